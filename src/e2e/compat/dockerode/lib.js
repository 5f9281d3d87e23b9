'use strict';
// Shared check runner for the dockerode suites: each check prints one line,
// "PASS <name>", "FAIL <name>: <why>" or "SKIP <name>: <reason>", and the
// suite ends with "SUMMARY <suite>: N passed, M skipped" (and a FAIL count
// when there are failures). TestCompatDockerode parses these lines.

const Docker = require('dockerode');

class Skip extends Error {}

function docker() {
  // Unversioned paths, as balena's device agent uses them: dockerode sends
  // /containers/... without a /vX.Y prefix when `version` is unset.
  const host = process.env.DOCKER_HOST || '';
  if (!host.startsWith('unix://')) throw new Error('DOCKER_HOST must be unix://PATH, got ' + host);
  return new Docker({ socketPath: host.slice('unix://'.length) });
}

function suite(name) {
  const counts = { pass: 0, fail: 0, skip: 0 };
  const one = (s) => String(s).replace(/\s+/g, ' ').slice(0, 2000);
  async function check(cname, fn) {
    try {
      await fn();
      counts.pass++;
      console.log(`PASS ${cname}`);
    } catch (e) {
      if (e instanceof Skip) {
        counts.skip++;
        console.log(`SKIP ${cname}: ${one(e.message)}`);
      } else {
        counts.fail++;
        const detail = e && e.statusCode ? ` (HTTP ${e.statusCode} ${one(JSON.stringify(e.json || e.reason || ''))})` : '';
        console.log(`FAIL ${cname}: ${one(e && e.message ? e.message : e)}${detail}`);
      }
    }
  }
  function summary() {
    const extra = counts.fail ? `, ${counts.fail} failed` : '';
    console.log(`SUMMARY ${name}: ${counts.pass} passed, ${counts.skip} skipped${extra}`);
  }
  return { check, summary, counts };
}

function skip(reason) { throw new Skip(reason); }

function assert(cond, msg) { if (!cond) throw new Error(msg); }

// deepEqual compares JSON data as lodash's isEqual does: the order of an
// object's keys does not count, an array's order does.
function deepEqual(a, b) {
  if (a === b) return true;
  if (typeof a !== typeof b || a === null || b === null || typeof a !== 'object') return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const ka = Object.keys(a), kb = Object.keys(b);
  if (ka.length !== kb.length) return false;
  return ka.every((k) => Object.prototype.hasOwnProperty.call(b, k) && deepEqual(a[k], b[k]));
}

function eq(got, want, what) {
  if (!deepEqual(got, want)) throw new Error(`${what}: got ${JSON.stringify(got)}, want ${JSON.stringify(want)}`);
}

// expectStatus runs p and wants it to fail with HTTP status code.
async function expectStatus(p, code, what) {
  try {
    await p;
  } catch (e) {
    if (e.statusCode === code) return e;
    throw new Error(`${what}: status ${e.statusCode}, want ${code}: ${e.message}`);
  }
  throw new Error(`${what}: succeeded, want HTTP ${code}`);
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function waitFor(cond, ms, what) {
  const end = Date.now() + ms;
  for (;;) {
    if (await cond()) return;
    if (Date.now() > end) throw new Error(`${what}: not within ${ms} ms`);
    await sleep(50);
  }
}

// events opens an event stream and collects its JSON messages.
async function events(d, opts) {
  const stream = await d.getEvents(opts || {});
  const got = [];
  let buf = '';
  stream.on('data', (chunk) => {
    buf += chunk.toString();
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i).trim();
      buf = buf.slice(i + 1);
      if (line) {
        try { got.push(JSON.parse(line)); } catch (e) { got.push({ parseError: line }); }
      }
    }
  });
  stream.on('error', () => {});
  return { got, close: () => stream.destroy() };
}

module.exports = { deepEqual, docker, suite, skip, Skip, assert, eq, expectStatus, sleep, waitFor, events };
