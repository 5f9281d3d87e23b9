'use strict';
// dockerode against the engine: the SDK's own calls over a unix socket,
// as a Node.js application (or balena's device agent) makes them.
//
// Environment: DOCKER_HOST=unix://PATH; COMPAT_IMAGE (an image loaded in
// the daemon, default busybox:latest); COMPAT_PULL_REF (an image in a
// registry the daemon reaches, for the pull check); COMPAT_TMP (a host
// directory for bind mounts).

const { PassThrough } = require('stream');
const { docker, suite, skip, assert, eq, expectStatus, sleep, waitFor, events } = require('./lib');

const d = docker();
const IMAGE = process.env.COMPAT_IMAGE || 'busybox:latest';
const TMP = process.env.COMPAT_TMP || '/tmp';
const { check, summary } = suite('dockerode');

// demux splits a multiplexed stream into its stdout and stderr with the
// SDK's own demultiplexer.
function demux(stream) {
  const out = new PassThrough(), err = new PassThrough();
  const o = [], e = [];
  out.on('data', (c) => o.push(c));
  err.on('data', (c) => e.push(c));
  d.modem.demuxStream(stream, out, err);
  return { stdout: () => Buffer.concat(o).toString(), stderr: () => Buffer.concat(e).toString() };
}

const ended = (stream) => new Promise((res, rej) => { stream.on('end', res); stream.on('close', res); stream.on('error', rej); });

async function main() {
  const cleanup = [];
  const create = async (opts) => {
    const c = await d.createContainer(Object.assign({ Image: IMAGE, HostConfig: { NetworkMode: 'none' } }, opts));
    cleanup.push(c);
    return c;
  };

  await check('version', async () => {
    const v = await d.version();
    assert(/^\d+\.\d+$/.test(v.ApiVersion), `ApiVersion ${v.ApiVersion}`);
    assert(/^\d+\.\d+$/.test(v.MinAPIVersion || ''), `MinAPIVersion ${v.MinAPIVersion}`);
    assert(v.Version && v.Os === 'linux' && v.Arch && v.GoVersion && v.GitCommit !== undefined, `version ${JSON.stringify(v)}`);
    assert(Array.isArray(v.Components) && v.Components.some((c) => c.Name === 'Engine'), `Components ${JSON.stringify(v.Components)}`);
  });

  await check('ping', async () => {
    const r = await d.ping();
    eq(Buffer.isBuffer(r) ? r.toString() : String(r), 'OK', 'ping');
  });

  await check('info', async () => {
    const i = await d.info();
    for (const k of ['ID', 'Containers', 'ContainersRunning', 'Images', 'Driver', 'OperatingSystem', 'Architecture', 'NCPU', 'MemTotal', 'DockerRootDir', 'ServerVersion', 'CgroupDriver']) {
      assert(i[k] !== undefined && i[k] !== null, `info has no ${k}: ${JSON.stringify(i).slice(0, 400)}`);
    }
    assert(i.Images >= 1, `Images ${i.Images}`);
  });

  await check('listImages', async () => {
    const imgs = await d.listImages();
    assert(imgs.some((i) => (i.RepoTags || []).includes(IMAGE)), `${IMAGE} not listed: ${JSON.stringify(imgs.map((i) => i.RepoTags))}`);
    const i = await d.getImage(IMAGE).inspect();
    assert(i.Id.startsWith('sha256:') && i.Config && i.RootFS, `image inspect ${JSON.stringify(i).slice(0, 300)}`);
  });

  const pull = async (ref) => {
    const stream = await d.pull(ref);
    const progress = [];
    await new Promise((res, rej) => d.modem.followProgress(stream, (err, o) => (err ? rej(err) : res(o)), (e) => progress.push(e)));
    return progress;
  };

  await check('pull of a new tag whose layers exist: "Downloaded newer image"', async () => {
    const ref = process.env.COMPAT_PULL_EXISTING_REF;
    if (!ref) skip('no registry given (COMPAT_PULL_EXISTING_REF unset)');
    const progress = await pull(ref);
    const statuses = progress.map((e) => e.status);
    assert(statuses.includes('Already exists'), `no "Already exists": ${JSON.stringify(statuses)}`);
    const last = statuses[statuses.length - 1];
    eq(last, `Status: Downloaded newer image for ${ref}`, 'last status');
    eq((await pull(ref)).map((e) => e.status).pop(), `Status: Image is up to date for ${ref}`, 'second pull');
  });

  await check('pull with followProgress', async () => {
    const ref = process.env.COMPAT_PULL_REF;
    if (!ref) skip('no registry given (COMPAT_PULL_REF unset)');
    const stream = await d.pull(ref);
    const progress = [];
    const out = await new Promise((res, rej) => d.modem.followProgress(stream, (err, o) => (err ? rej(err) : res(o)), (e) => progress.push(e)));
    assert(progress.length > 0 && out.length === progress.length, `progress events ${progress.length}, output ${out.length}`);
    const errs = progress.filter((e) => e.error || e.errorDetail);
    assert(errs.length === 0, `errors in the stream: ${JSON.stringify(errs)}`);
    const statuses = progress.map((e) => e.status);
    assert(statuses.some((s) => /^Pulling from /.test(s)), `no "Pulling from": ${JSON.stringify(statuses)}`);
    assert(statuses.some((s) => /^Digest: sha256:/.test(s)), `no "Digest:": ${JSON.stringify(statuses)}`);
    assert(statuses.some((s) => s === 'Downloading' || s === 'Pull complete'), `no layer progress: ${JSON.stringify(statuses)}`);
    assert(progress.some((e) => e.id && e.progressDetail !== undefined), 'no layer event with id and progressDetail');
    eq(statuses[statuses.length - 1], `Status: Downloaded newer image for ${ref}`, 'last status');
    const img = await d.getImage(ref).inspect();
    assert((img.RepoTags || []).includes(ref), `RepoTags ${img.RepoTags}`);
    assert((img.RepoDigests || []).length === 1, `RepoDigests ${img.RepoDigests}`);
  });

  let full;
  const bindDir = `${TMP}/dockerode-bind`;
  require('fs').mkdirSync(bindDir, { recursive: true });
  require('fs').writeFileSync(`${bindDir}/hello`, 'from the host\n');
  const fullOpts = {
    name: 'dockerode-full',
    Image: IMAGE,
    Cmd: ['sh', '-c', 'cat /data/hello; echo to-stderr >&2; sleep 600'],
    Env: ['FOO=bar', 'EMPTY='],
    Labels: { 'com.example.app': 'compat', 'io.balena.supervised': 'true' },
    WorkingDir: '/tmp',
    StopSignal: 'SIGTERM',
    StopTimeout: 3,
    HostConfig: {
      Binds: [`${bindDir}:/data:ro`],
      RestartPolicy: { Name: 'on-failure', MaximumRetryCount: 3 },
      Memory: 64 * 1024 * 1024,
      CpuShares: 512,
      LogConfig: { Type: 'json-file', Config: { 'max-size': '1m', 'max-file': '2' } },
      NetworkMode: 'none',
    },
  };
  await check('createContainer full HostConfig, inspect equal', async () => {
    full = await d.createContainer(fullOpts);
    cleanup.push(full);
    const i = await full.inspect();
    eq(i.Name, '/dockerode-full', 'Name');
    eq(i.Config.Cmd, fullOpts.Cmd, 'Config.Cmd');
    for (const e of fullOpts.Env) assert(i.Config.Env.includes(e), `Config.Env ${JSON.stringify(i.Config.Env)} lacks ${e}`);
    eq(i.Config.Labels, fullOpts.Labels, 'Config.Labels');
    eq(i.Config.WorkingDir, '/tmp', 'Config.WorkingDir');
    eq(i.Config.StopSignal, 'SIGTERM', 'Config.StopSignal');
    eq(i.Config.StopTimeout, 3, 'Config.StopTimeout');
    eq(i.Config.Image, IMAGE, 'Config.Image');
    eq(i.HostConfig.Binds, fullOpts.HostConfig.Binds, 'HostConfig.Binds');
    eq(i.HostConfig.RestartPolicy, fullOpts.HostConfig.RestartPolicy, 'HostConfig.RestartPolicy');
    eq(i.HostConfig.Memory, fullOpts.HostConfig.Memory, 'HostConfig.Memory');
    eq(i.HostConfig.CpuShares, 512, 'HostConfig.CpuShares');
    eq(i.HostConfig.LogConfig, fullOpts.HostConfig.LogConfig, 'HostConfig.LogConfig');
    eq(i.HostConfig.NetworkMode, 'none', 'HostConfig.NetworkMode');
    eq(i.State.Status, 'created', 'State.Status');
    const m = (i.Mounts || []).find((x) => x.Destination === '/data');
    assert(m && m.Type === 'bind' && m.Source === bindDir && m.RW === false, `Mounts ${JSON.stringify(i.Mounts)}`);
  });

  await check('listContainers with label filter', async () => {
    if (!full) skip('no container');
    const l = await d.listContainers({ all: true, filters: { label: ['com.example.app=compat'] } });
    eq(l.map((c) => c.Id), [full.id], 'ids');
    eq(l[0].Names, ['/dockerode-full'], 'Names');
    eq(l[0].State, 'created', 'State');
  });

  await check('start, inspect running', async () => {
    await full.start();
    const i = await full.inspect();
    assert(i.State.Running && i.State.Pid > 0 && i.State.Status === 'running', `State ${JSON.stringify(i.State)}`);
  });

  await check('start again: 304', async () => {
    await expectStatus(full.start(), 304, 'second start');
  });

  await check('logs demultiplexed (follow=false)', async () => {
    await waitFor(async () => (await full.logs({ stdout: true, stderr: true })).length > 0, 10000, 'logs');
    await sleep(200);
    const buf = await full.logs({ stdout: true, stderr: true, timestamps: false });
    // Without follow dockerode gives a Buffer of the multiplexed stream.
    const s = new PassThrough();
    const r = demux(s);
    s.end(buf);
    await ended(s);
    await sleep(50);
    eq(r.stdout(), 'from the host\n', 'stdout');
    eq(r.stderr(), 'to-stderr\n', 'stderr');
  });

  await check('logs follow stream demultiplexed', async () => {
    const stream = await full.logs({ follow: true, stdout: true, stderr: true });
    const r = demux(stream);
    await waitFor(() => r.stdout() === 'from the host\n' && r.stderr() === 'to-stderr\n', 5000, `follow logs (stdout ${JSON.stringify(r.stdout())}, stderr ${JSON.stringify(r.stderr())})`);
    stream.destroy();
  });

  await check('attach demultiplexed', async () => {
    const c = await create({ Cmd: ['sh', '-c', 'read x; echo "out:$x"; echo "err:$x" >&2'], OpenStdin: true, StdinOnce: true, AttachStdin: true, AttachStdout: true, AttachStderr: true });
    const stream = await c.attach({ stream: true, stdin: true, stdout: true, stderr: true, hijack: true });
    const r = demux(stream);
    await c.start();
    stream.write('hello\n');
    stream.end();
    const w = await c.wait();
    await waitFor(() => r.stdout() && r.stderr(), 5000, `attach output (stdout ${JSON.stringify(r.stdout())}, stderr ${JSON.stringify(r.stderr())})`);
    eq(w.StatusCode, 0, 'exit');
    eq(r.stdout(), 'out:hello\n', 'stdout');
    eq(r.stderr(), 'err:hello\n', 'stderr');
  });

  await check('exec hijacked, demultiplexed, ExitCode', async () => {
    const ex = await full.exec({ Cmd: ['sh', '-c', 'echo out; echo err >&2; cat /data/hello >&2; exit 7'], AttachStdout: true, AttachStderr: true });
    const stream = await ex.start({ hijack: true, stdin: false });
    const r = demux(stream);
    await ended(stream);
    await sleep(50);
    eq(r.stdout(), 'out\n', 'stdout');
    eq(r.stderr(), 'err\nfrom the host\n', 'stderr');
    const i = await ex.inspect();
    eq(i.ExitCode, 7, 'ExitCode');
    eq(i.Running, false, 'Running');
    eq(i.ContainerID, full.id, 'ContainerID');
    eq(i.ProcessConfig && i.ProcessConfig.entrypoint, 'sh', 'ProcessConfig.entrypoint');
  });

  await check('exec with stdin', async () => {
    const ex = await full.exec({ Cmd: ['sh', '-c', 'tr a-z A-Z'], AttachStdin: true, AttachStdout: true, AttachStderr: true });
    const stream = await ex.start({ hijack: true, stdin: true });
    const r = demux(stream);
    stream.end('shout\n');
    await ended(stream);
    await sleep(50);
    eq(r.stdout(), 'SHOUT\n', 'stdout');
    eq((await ex.inspect()).ExitCode, 0, 'ExitCode');
  });

  await check('exec with Tty: raw stream', async () => {
    const ex = await full.exec({ Cmd: ['sh', '-c', 'echo tty'], AttachStdout: true, AttachStderr: true, Tty: true });
    const stream = await ex.start({ hijack: true, stdin: false, Tty: true });
    const chunks = [];
    stream.on('data', (c) => chunks.push(c));
    await ended(stream);
    eq(Buffer.concat(chunks).toString(), 'tty\r\n', 'output');
  });

  await check('stop, restart, kill, wait', async () => {
    await full.stop({ t: 1 });
    let i = await full.inspect();
    assert(!i.State.Running && i.State.Status === 'exited', `after stop ${JSON.stringify(i.State)}`);
    await expectStatus(full.stop(), 304, 'stop again');
    await full.restart({ t: 1 });
    i = await full.inspect();
    assert(i.State.Running, `after restart ${JSON.stringify(i.State)}`);
    const waited = full.wait();
    await full.kill({ signal: 'SIGKILL' });
    const w = await waited;
    eq(w.StatusCode, 137, 'wait StatusCode after SIGKILL');
    i = await full.inspect();
    eq(i.State.ExitCode, 137, 'State.ExitCode');
    eq(i.State.Running, false, 'State.Running');
  });

  await check('wait condition not-running on exited', async () => {
    const c = await create({ Cmd: ['sh', '-c', 'exit 3'] });
    await c.start();
    const w = await c.wait({ condition: 'not-running' });
    eq(w.StatusCode, 3, 'StatusCode');
  });

  await check('getEvents: start/die with legacy status/id/from', async () => {
    const ev = await events(d, { filters: { type: ['container'] } });
    await sleep(200);
    const c = await create({ Cmd: ['true'], Labels: { ev: '1' } });
    await c.start();
    await c.wait();
    await waitFor(() => ev.got.some((e) => e.Action === 'die' && e.Actor && e.Actor.ID === c.id), 10000, 'die event');
    ev.close();
    const mine = ev.got.filter((e) => e.Actor && e.Actor.ID === c.id);
    const actions = mine.map((e) => e.Action);
    for (const a of ['create', 'start', 'die']) assert(actions.includes(a), `actions ${JSON.stringify(actions)} lack ${a}`);
    const start = mine.find((e) => e.Action === 'start');
    const die = mine.find((e) => e.Action === 'die');
    eq(start.Type, 'container', 'Type');
    eq(start.Actor.Attributes.image, IMAGE, 'Actor.Attributes.image');
    eq(start.Actor.Attributes.ev, '1', 'label in Actor.Attributes');
    eq(die.Actor.Attributes.exitCode, '0', 'die exitCode');
    assert(typeof start.time === 'number' && typeof start.timeNano === 'number', 'time/timeNano');
    eq([start.status, start.id, start.from], ['start', c.id, IMAGE], 'legacy fields of start (status, id, from)');
    eq([die.status, die.id, die.from], ['die', c.id, IMAGE], 'legacy fields of die (status, id, from)');
  });

  await check('error 404 for a missing container', async () => {
    const e = await expectStatus(d.getContainer('no-such-container-xyz').inspect(), 404, 'inspect missing');
    assert(/no such container/i.test(JSON.stringify(e.json || e.message)), `message ${e.message}`);
    await expectStatus(d.getContainer('no-such-container-xyz').remove(), 404, 'remove missing');
    await expectStatus(d.getImage('no-such-image-xyz:1').inspect(), 404, 'image inspect missing');
  });

  await check('error 409 removing a running container without force', async () => {
    const c = await create({ Cmd: ['sleep', '600'] });
    await c.start();
    const e = await expectStatus(c.remove(), 409, 'remove running');
    assert(/running|stop/i.test(JSON.stringify(e.json || e.message)), `message ${e.message}`);
    await c.remove({ force: true, v: true });
    await expectStatus(c.inspect(), 404, 'after forced remove');
  });

  await check('error 409 creating a duplicate name', async () => {
    await expectStatus(d.createContainer({ name: 'dockerode-full', Image: IMAGE, HostConfig: { NetworkMode: 'none' } }), 409, 'duplicate name');
  });

  await check('remove with v and force', async () => {
    // (on-failure may have restarted it after the kill above)
    try { await full.start(); } catch (e) { if (e.statusCode !== 304) throw e; }
    await full.remove({ v: true, force: true });
    await expectStatus(full.inspect(), 404, 'inspect after remove');
  });

  for (const c of cleanup) {
    try { await c.remove({ force: true, v: true }); } catch (e) { /* gone already */ }
  }
  summary();
}

main().catch((e) => { console.log(`FAIL suite: ${e && e.stack ? e.stack.split('\n').join(' | ') : e}`); process.exit(1); });
