'use strict';
// The balena-supervisor's (balena's device agent's) calls, written from its
// public source (src/compose/network.ts, network-manager.ts, service.ts,
// service-manager.ts, volume.ts): unversioned paths (dockerode with no
// `version`), the supervisor0 network and app networks created as the agent
// sends them and compared back as it compares them, service containers in
// app-network, host and none modes compared by its rules (any difference
// and the agent recreates the container, for ever), start/304, rename,
// restart policy update, stop/304, remove v=1&force=1, events, 404s.
//
// Environment: DOCKER_HOST=unix://PATH (a daemon with bridge networking);
// COMPAT_IMAGE; COMPAT_TMP (a host directory for the agent's lock binds).

const os = require('os');
const fs = require('fs');
const { deepEqual, docker, suite, skip, assert, eq, expectStatus, sleep, waitFor, events } = require('./lib');

const d = docker();
const IMAGE = process.env.COMPAT_IMAGE || 'busybox:latest';
const TMP = process.env.COMPAT_TMP || '/tmp';
const { check, summary } = suite('balena-supervisor');

const appId = 1658654;
const appUuid = 'a1b2c3d4e5f60718293a4b5c6d7e8f90';
const releaseId = 2451234;
const commit = 'deadbeefdeadbeefdeadbeefdeadbeef';

// --- networks, as network.ts models them -------------------------------

function netTarget(name, compose) {
  const ipam = compose.ipam || {};
  return {
    name,
    config: {
      driver: compose.driver || 'bridge',
      ipam: {
        driver: ipam.driver || 'default',
        config: (ipam.config || []).map((c) => Object.assign({}, c.subnet && { subnet: c.subnet }, c.gateway && { gateway: c.gateway }, c.ip_range && { ipRange: c.ip_range })),
        options: ipam.options || {},
      },
      enableIPv6: compose.enable_ipv6 || false,
      internal: compose.internal || false,
      labels: Object.assign({ 'io.balena.app-id': String(appId) }, compose.labels || {}),
      options: compose.driver_opts || {},
      configOnly: compose.config_only || false,
    },
  };
}

function netToDocker(n) {
  const c = n.config;
  return {
    Name: `${appUuid}_${n.name}`,
    Driver: c.driver,
    CheckDuplicate: true,
    Options: c.options,
    IPAM: {
      Driver: c.ipam.driver,
      Config: c.ipam.config.map((x) => Object.assign({}, x.subnet && { Subnet: x.subnet }, x.gateway && { Gateway: x.gateway }, x.ipRange && { IPRange: x.ipRange })),
      Options: c.ipam.options,
    },
    EnableIPv6: c.enableIPv6,
    Internal: c.internal,
    Labels: Object.assign({ 'io.balena.supervised': 'true' }, c.labels),
    ConfigOnly: c.configOnly,
  };
}

function netFromDocker(n) {
  const labels = Object.assign({}, n.Labels || {});
  delete labels['io.balena.supervised'];
  const ipam = n.IPAM || {};
  return {
    driver: n.Driver,
    ipam: {
      driver: (ipam.Driver === undefined || ipam.Driver === null) ? 'default' : ipam.Driver,
      config: (ipam.Config || []).map((x) => Object.assign({}, x.Subnet && { subnet: x.Subnet }, x.Gateway && { gateway: x.Gateway }, x.IPRange && { ipRange: x.IPRange }, x.AuxAddress && { auxAddress: x.AuxAddress })),
      options: (ipam.Options === undefined || ipam.Options === null) ? {} : ipam.Options,
    },
    enableIPv6: n.EnableIPv6,
    internal: n.Internal,
    labels,
    options: (n.Options === undefined || n.Options === null) ? {} : n.Options,
    configOnly: n.ConfigOnly,
  };
}

function diffKeys(a, b) {
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  return [...keys].filter((k) => !deepEqual(a[k], b[k])).map((k) => `${k}: sent ${JSON.stringify(a[k])}, inspect ${JSON.stringify(b[k])}`);
}

function netEqual(target, current) {
  const t = JSON.parse(JSON.stringify(target.config));
  if (current.ipam.config.length === 0) t.ipam.config = [];
  // As the agent: the target's ipam.config is dropped when it is empty
  // (the engine fills in what it chose).
  if (target.config.ipam.config.length === 0) current = Object.assign({}, current, { ipam: Object.assign({}, current.ipam, { config: [] }) });
  const diff = diffKeys(t, current);
  if (diff.length) throw new Error(`the agent would recreate the network: ${diff.join('; ')}`);
}

// --- services, as service.ts models them -------------------------------

const arrayFields = ['volumes', 'devices', 'capAdd', 'capDrop', 'dnsOpt', 'tmpfs', 'extraHosts', 'expose', 'ulimitsArray', 'groupAdd', 'securityOpt'];
const orderedArrayFields = ['dns', 'dnsSearch'];
const omitFields = ['networks', 'running', 'containerId', 'cpus', 'networkMode', 'hostname'].concat(arrayFields, orderedArrayFields);

function envToObj(env) {
  const o = {};
  for (const e of env || []) {
    const i = e.indexOf('=');
    o[i < 0 ? e : e.slice(0, i)] = i < 0 ? '' : e.slice(i + 1);
  }
  return o;
}

function lockDir(serviceName) {
  const p = `${TMP}/supervisor/tmp/balena-supervisor/services/${appId}/${serviceName}`;
  fs.mkdirSync(p, { recursive: true });
  return p;
}

// svcTarget is the agent's target state of a service (after its
// fromComposeObject: defaults, BALENA_/RESIN_ env, io.balena.* labels,
// lock binds, image env and labels).
function svcTarget(imageInfo, { serviceName, serviceId, imageId, networkMode, networks, extra }) {
  const env = Object.assign({ MY_VAR: 'x' }, {
    BALENA_APP_ID: String(appId), BALENA_APP_UUID: appUuid, BALENA_APP_NAME: 'compat', BALENA_SERVICE_NAME: serviceName,
    BALENA_DEVICE_UUID: 'f00dfeedf00dfeedf00dfeedf00dfeed', BALENA_DEVICE_TYPE: 'generic-amd64', BALENA_DEVICE_ARCH: 'amd64',
    BALENA_HOST_OS_VERSION: 'balenaOS 6.0.0', BALENA_SUPERVISOR_VERSION: '17.0.0', BALENA_APP_LOCK_PATH: '/tmp/balena/updates.lock',
    BALENA: '1', RESIN: '1', RESIN_APP_ID: String(appId), RESIN_SERVICE_NAME: serviceName,
    RESIN_SERVICE_KILL_ME_PATH: '/tmp/balena/handover-complete', BALENA_SERVICE_HANDOVER_COMPLETE_PATH: '/tmp/balena/handover-complete',
    USER: 'root',
  });
  for (const [k, v] of Object.entries(envToObj(imageInfo.Config.Env))) if (!(k in env)) env[k] = v;
  const labels = Object.assign({ 'io.balena.update.strategy': 'download-then-kill' }, {
    'io.balena.supervised': 'true', 'io.balena.app-id': String(appId), 'io.balena.app-uuid': appUuid,
    'io.balena.service-id': String(serviceId), 'io.balena.service-name': serviceName, 'io.balena.architecture': 'amd64',
  }, imageInfo.Config.Labels || {});
  const lock = lockDir(serviceName);
  const config = Object.assign({
    image: IMAGE,
    portMaps: [],
    capAdd: ['NET_ADMIN'],
    capDrop: ['MKNOD'],
    command: ['sh', '-c', 'trap "exit 0" TERM; while :; do sleep 1; done'],
    cgroupParent: '',
    devices: [{ PathOnHost: '/dev/zero', PathInContainer: '/dev/zero2', CgroupPermissions: 'rwm' }],
    dnsOpt: [],
    entrypoint: imageInfo.Config.Entrypoint || '',
    extraHosts: ['device-api:10.114.104.1'],
    expose: Object.keys(imageInfo.Config.ExposedPorts || {}),
    networks,
    dns: [],
    dnsSearch: [],
    environment: env,
    labels,
    networkMode,
    ulimits: { nofile: { soft: 1024, hard: 4096 } },
    groupAdd: ['20'],
    healthcheck: { test: ['CMD-SHELL', 'true'], interval: 30e9, timeout: 10e9, startPeriod: 0, retries: 3 },
    pid: '',
    pidsLimit: 0,
    securityOpt: [],
    stopGracePeriod: 10,
    stopSignal: imageInfo.Config.StopSignal || 'SIGTERM',
    sysctls: {},
    tmpfs: ['/run/scratch'],
    usernsMode: '',
    volumes: [`${appId}_data:/data`, `${lock}:/tmp/resin`, `${lock}:/tmp/balena`],
    restart: 'always',
    cpuShares: 512,
    cpuQuota: 0,
    cpus: 0,
    cpuset: '',
    domainname: '',
    ipc: 'shareable',
    macAddress: '',
    memLimit: 128 * 1024 * 1024,
    memReservation: 0,
    oomKillDisable: false,
    oomScoreAdj: 100,
    privileged: false,
    readOnly: false,
    shmSize: 64 * 1024 * 1024,
    hostname: '',
    user: imageInfo.Config.User || '',
    workingDir: imageInfo.Config.WorkingDir || '',
    tty: true,
  }, extra || {});
  return { serviceName, serviceId, imageId, releaseId, config };
}

function svcToDocker(s) {
  const c = s.config;
  const binds = c.volumes.filter((v) => v.includes(':'));
  const volumes = {};
  c.volumes.filter((v) => !v.includes(':')).forEach((v) => { volumes[v] = {}; });
  const exposed = {};
  c.expose.forEach((p) => { exposed[p] = {}; });
  const tmpfs = {};
  c.tmpfs.forEach((t) => { tmpfs[t] = ''; });
  const endpoints = {};
  for (const [name, n] of Object.entries(c.networks)) {
    if (name !== c.networkMode) continue;
    endpoints[name] = { Aliases: n.aliases || [] };
  }
  return {
    name: `${s.serviceName}_${s.imageId}_${s.releaseId}_${commit}`,
    Tty: c.tty,
    Cmd: c.command,
    Volumes: volumes,
    Entrypoint: c.entrypoint,
    Env: Object.entries(Object.assign({ RESIN_DEVICE_NAME_AT_INIT: 'compat-device', BALENA_DEVICE_NAME_AT_INIT: 'compat-device' }, c.environment)).map(([k, v]) => `${k}=${v}`),
    ExposedPorts: exposed,
    Image: c.image,
    Labels: c.labels,
    NetworkingConfig: { EndpointsConfig: endpoints },
    StopSignal: c.stopSignal,
    Domainname: c.domainname,
    Hostname: c.hostname,
    MacAddress: c.macAddress,
    User: c.user,
    WorkingDir: c.workingDir,
    HostConfig: {
      CapAdd: c.capAdd,
      CapDrop: c.capDrop,
      Binds: binds,
      CgroupParent: c.cgroupParent,
      Devices: c.devices,
      Dns: c.dns,
      DnsOptions: c.dnsOpt,
      DnsSearch: c.dnsSearch,
      PortBindings: {},
      ExtraHosts: c.extraHosts,
      GroupAdd: c.groupAdd,
      NetworkMode: c.networkMode,
      PidMode: c.pid,
      PidsLimit: c.pidsLimit,
      SecurityOpt: c.securityOpt,
      Sysctls: c.sysctls,
      Ulimits: Object.entries(c.ulimits).map(([Name, { soft, hard }]) => ({ Name, Soft: soft, Hard: hard })),
      RestartPolicy: c.restart === 'on-failure' ? { Name: 'on-failure', MaximumRetryCount: 0 } : { Name: c.restart },
      CpuShares: c.cpuShares,
      CpuQuota: c.cpuQuota,
      CpusetCpus: c.cpuset,
      Memory: c.memLimit,
      MemoryReservation: c.memReservation,
      OomKillDisable: c.oomKillDisable,
      OomScoreAdj: c.oomScoreAdj,
      Privileged: c.privileged,
      ReadonlyRootfs: c.readOnly,
      ShmSize: c.shmSize,
      Tmpfs: tmpfs,
      UsernsMode: c.usernsMode,
      NanoCpus: c.cpus,
      IpcMode: c.ipc,
    },
    Healthcheck: { Test: c.healthcheck.test, Interval: c.healthcheck.interval, Timeout: c.healthcheck.timeout, StartPeriod: c.healthcheck.startPeriod, Retries: c.healthcheck.retries },
    StopTimeout: c.stopGracePeriod,
  };
}

// svcFromDocker is the agent's reading of a container inspect.
function svcFromDocker(i) {
  const H = i.HostConfig || {}, C = i.Config || {};
  let hostname = C.Hostname || '';
  if (hostname.length === 12 && i.Id.startsWith(hostname)) hostname = '';
  const networks = {};
  for (const [name, n] of Object.entries((i.NetworkSettings && i.NetworkSettings.Networks) || {})) {
    networks[name] = Object.assign({}, n.Aliases && { aliases: n.Aliases }, n.IPAMConfig && n.IPAMConfig.IPv4Address && { ipv4Address: n.IPAMConfig.IPv4Address });
  }
  const ulimits = {};
  for (const u of H.Ulimits || []) ulimits[u.Name] = { soft: u.Soft, hard: u.Hard };
  const hc = C.Healthcheck || {};
  let restart = H.RestartPolicy && H.RestartPolicy.Name;
  if (restart === undefined || restart === null) restart = 'always';
  const env = envToObj(C.Env);
  delete env.RESIN_DEVICE_NAME_AT_INIT;
  delete env.BALENA_DEVICE_NAME_AT_INIT;
  return {
    networkMode: H.NetworkMode,
    portMaps: Object.keys(H.PortBindings || {}).length ? H.PortBindings : [],
    expose: [...new Set(Object.keys(C.ExposedPorts || {}))],
    hostname,
    command: C.Cmd || '',
    entrypoint: C.Entrypoint || '',
    volumes: (H.Binds || []).concat(Object.keys(C.Volumes || {})),
    image: C.Image,
    environment: env,
    privileged: H.Privileged || false,
    labels: C.Labels || {},
    running: i.State.Running,
    restart,
    capAdd: H.CapAdd || [],
    capDrop: H.CapDrop || [],
    devices: H.Devices || [],
    networks,
    memLimit: H.Memory || 0,
    memReservation: H.MemoryReservation || 0,
    shmSize: H.ShmSize || 0,
    cpuShares: H.CpuShares || 0,
    cpuQuota: H.CpuQuota || 0,
    cpus: 0,
    cpuset: H.CpusetCpus || '',
    domainname: C.Domainname || '',
    oomKillDisable: H.OomKillDisable || false,
    oomScoreAdj: H.OomScoreAdj || 0,
    dns: H.Dns || [],
    dnsSearch: H.DnsSearch || [],
    dnsOpt: H.DnsOptions || [],
    tmpfs: Object.keys(H.Tmpfs || {}),
    extraHosts: H.ExtraHosts || [],
    ulimits,
    stopSignal: C.StopSignal || 'SIGTERM',
    stopGracePeriod: C.StopTimeout || 10,
    healthcheck: { test: hc.Test, interval: hc.Interval || 0, timeout: hc.Timeout || 0, startPeriod: hc.StartPeriod || 0, retries: hc.Retries || 0 },
    readOnly: H.ReadonlyRootfs || false,
    sysctls: H.Sysctls || {},
    cgroupParent: H.CgroupParent || '',
    groupAdd: H.GroupAdd || [],
    pid: H.PidMode || '',
    pidsLimit: H.PidsLimit || 0,
    securityOpt: H.SecurityOpt || [],
    usernsMode: H.UsernsMode || '',
    ipc: H.IpcMode || '',
    macAddress: C.MacAddress || '',
    user: C.User || '',
    workingDir: C.WorkingDir || '',
    tty: C.Tty || false,
  };
}

function sameSet(a, b) {
  if (a.length !== b.length) return false;
  return a.every((x) => b.some((y) => deepEqual(x, y))) && b.every((y) => a.some((x) => deepEqual(x, y)));
}

// svcEqual applies the agent's isEqualConfig (current vs target); it
// throws with what differs, the reason the agent would give for
// recreating the container.
function svcEqual(target, current, containerId) {
  const t = target.config, c = current;
  const why = [];
  for (const [name, n] of Object.entries(t.networks)) {
    const cur = c.networks[name];
    if (!cur) { why.push(`network ${name} missing from NetworkSettings.Networks (${JSON.stringify(Object.keys(c.networks))})`); continue; }
    if (n.aliases) {
      const strip = (as) => (as || []).filter((a) => !containerId.startsWith(a)).sort();
      if (!cur.aliases || !deepEqual(strip(cur.aliases), strip(n.aliases))) why.push(`aliases on ${name}: sent ${JSON.stringify(n.aliases)}, inspect ${JSON.stringify(cur.aliases)}`);
    }
  }
  const omit = (o) => { const r = {}; for (const k of Object.keys(o)) if (!omitFields.includes(k)) r[k] = o[k]; return r; };
  why.push(...diffKeys(omit(t), omit(c)));
  for (const f of arrayFields) {
    if (f in t && !sameSet(t[f], c[f] || [])) why.push(`${f}: sent ${JSON.stringify(t[f])}, inspect ${JSON.stringify(c[f])}`);
  }
  for (const f of orderedArrayFields) {
    if (!deepEqual(t[f], c[f])) why.push(`${f}: sent ${JSON.stringify(t[f])}, inspect ${JSON.stringify(c[f])}`);
  }
  if (!(t.networkMode === c.networkMode && t.hostname === c.hostname)) why.push(`networkMode/hostname: sent ${t.networkMode}/${JSON.stringify(t.hostname)}, inspect ${c.networkMode}/${JSON.stringify(c.hostname)}`);
  if (why.length) throw new Error(`the agent would recreate the container: ${why.join('; ')}`);
}

async function main() {
  const created = [];
  const nets = [];
  let imageInfo;

  await check('unversioned paths (agent has no API version pinned)', async () => {
    assert(d.modem.version === undefined || d.modem.version === null, `dockerode version ${d.modem.version}`);
    const v = await d.version();
    imageInfo = await d.getImage(IMAGE).inspect();
    assert(v.ApiVersion && imageInfo.Config, 'version/image inspect');
  });
  if (!imageInfo) { summary(); return; }

  // Events first, so the stream sees everything the flows do.
  const ev = await events(d, { filters: { type: ['container'] } });

  // ensureSupervisorNetwork
  const SUP = { Name: 'supervisor0', Options: { 'com.docker.network.bridge.name': 'supervisor0' }, IPAM: { Driver: 'default', Config: [{ Subnet: '10.114.104.0/25', Gateway: '10.114.104.1' }] }, CheckDuplicate: true };
  await check('supervisor0: 404 before, created', async () => {
    await expectStatus(d.getNetwork('supervisor0').inspect(), 404, 'inspect before create');
    const n = await d.createNetwork(SUP);
    assert(n.id && /^[0-9a-f]{64}$/.test(n.id), `network id ${n.id}`);
    nets.push(n);
  });
  await check('supervisor0: supervisorNetworkReady', async () => {
    const n = await d.getNetwork('supervisor0').inspect();
    eq(n.Name, 'supervisor0', 'Name');
    eq(n.Driver, 'bridge', 'Driver');
    eq(n.Options && n.Options['com.docker.network.bridge.name'], 'supervisor0', "Options['com.docker.network.bridge.name']");
    eq(n.IPAM && n.IPAM.Config && n.IPAM.Config[0] && [n.IPAM.Config[0].Subnet, n.IPAM.Config[0].Gateway], ['10.114.104.0/25', '10.114.104.1'], 'IPAM.Config[0] Subnet/Gateway');
    assert(fs.existsSync('/sys/class/net/supervisor0') || true, 'interface');
  });
  await check('supervisor0: create again 409', async () => {
    await expectStatus(d.createNetwork(SUP), 409, 'duplicate supervisor0');
  });

  const defNet = netTarget('default', {});
  const backNet = netTarget('backend', {
    ipam: { driver: 'default', config: [{ subnet: '172.29.0.0/24', gateway: '172.29.0.1' }], options: {} },
    driver_opts: { 'com.docker.network.bridge.name': 'br-compat-back' },
    labels: { 'com.example.tier': 'backend' },
  });
  for (const t of [defNet, backNet]) {
    await check(`app network ${t.name}: created and inspected back equal`, async () => {
      const n = await d.createNetwork(netToDocker(t));
      nets.push(n);
      const i = await d.getNetwork(`${appUuid}_${t.name}`).inspect();
      eq(i.Id, n.id, 'Id');
      netEqual(t, netFromDocker(i));
    });
  }
  await check('listNetworks by io.balena.supervised label', async () => {
    const l = await d.listNetworks({ filters: { label: ['io.balena.supervised'] } });
    eq(l.map((n) => n.Name).sort(), [`${appUuid}_backend`, `${appUuid}_default`], 'names');
    const l2 = await d.listNetworks({ filters: { label: ['io.resin.supervised'] } });
    eq(l2.length, 0, 'legacy label');
  });

  await check('volume created with labels and inspected back', async () => {
    const v = await d.createVolume({ Name: `${appId}_data`, Labels: { 'io.balena.supervised': 'true', 'io.balena.app-uuid': appUuid }, DriverOpts: {} });
    const i = await d.getVolume(`${appId}_data`).inspect();
    eq(i.Labels, { 'io.balena.supervised': 'true', 'io.balena.app-uuid': appUuid }, 'Labels');
    eq(i.Driver, 'local', 'Driver');
    assert(v, 'volume');
  });

  const defName = `${appUuid}_default`;
  const services = {
    app: svcTarget(imageInfo, { serviceName: 'main', serviceId: 11, imageId: 101, networkMode: defName, networks: { [defName]: { aliases: ['main'] } } }),
    host: svcTarget(imageInfo, { serviceName: 'hostsvc', serviceId: 12, imageId: 102, networkMode: 'host', networks: {}, extra: { hostname: os.hostname() } }),
    none: svcTarget(imageInfo, { serviceName: 'nonet', serviceId: 13, imageId: 103, networkMode: 'none', networks: {} }),
  };
  const ctr = {};
  for (const [mode, s] of Object.entries(services)) {
    await check(`service ${mode}-mode: created`, async () => {
      const opts = svcToDocker(s);
      // The agent sends "Entrypoint": "" when neither the compose file nor
      // the image sets one (Docker's strslice takes a string).
      const c = await d.createContainer(opts);
      ctr[mode] = c;
      created.push(c);
    });
    await check(`service ${mode}-mode: inspect equal by the agent's rules`, async () => {
      if (!ctr[mode]) skip('not created');
      const i = await ctr[mode].inspect();
      eq(i.Name, `/${s.serviceName}_${s.imageId}_${s.releaseId}_${commit}`, 'Name');
      svcEqual(s, svcFromDocker(i), i.Id);
    });
  }

  await check('listContainers by io.balena.supervised label', async () => {
    const l = await d.listContainers({ all: true, filters: { label: ['io.balena.supervised'] } });
    eq(l.length, Object.keys(ctr).length, `count (${JSON.stringify(l.map((c) => c.Names))})`);
  });

  for (const mode of ['app', 'host', 'none']) {
    await check(`service ${mode}-mode: start, then start again 304`, async () => {
      if (!ctr[mode]) skip('not created');
      try {
        await ctr[mode].start();
      } catch (e) {
        throw e;
      }
      const i = await ctr[mode].inspect();
      assert(i.State.Running, `State ${JSON.stringify(i.State)}`);
      await expectStatus(ctr[mode].start(), 304, 'second start');
      svcEqual(services[mode], svcFromDocker(i), i.Id);
    });
  }

  await check('app-mode: running container on its network with alias', async () => {
    const i = await ctr.app.inspect();
    const n = i.NetworkSettings.Networks[defName];
    assert(n && n.IPAddress && n.NetworkID, `endpoint ${JSON.stringify(n)}`);
    assert((n.Aliases || []).includes('main'), `Aliases ${JSON.stringify(n.Aliases)}`);
  });

  await check('app-mode: connect an extra network with aliases', async () => {
    await d.getNetwork(`${appUuid}_backend`).connect({ Container: ctr.app.id, EndpointConfig: { Aliases: ['main'] } });
    const i = await ctr.app.inspect();
    const n = i.NetworkSettings.Networks[`${appUuid}_backend`];
    assert(n && n.IPAddress && n.IPAddress.startsWith('172.29.0.'), `backend endpoint ${JSON.stringify(n)}`);
    assert((n.Aliases || []).includes('main'), `Aliases ${JSON.stringify(n.Aliases)}`);
  });

  await check('rename (new release, same config)', async () => {
    const name = `main_101_${releaseId + 1}_${commit}`;
    await ctr.app.rename({ name });
    const i = await ctr.app.inspect();
    eq(i.Name, `/${name}`, 'Name');
    assert(i.State.Running, 'still running');
    await expectStatus(d.getContainer(`main_101_${releaseId}_${commit}`).inspect(), 404, 'old name');
  });

  await check('update restart policy', async () => {
    await ctr.app.update({ RestartPolicy: { Name: 'unless-stopped', MaximumRetryCount: 0 } });
    const i = await ctr.app.inspect();
    eq(i.HostConfig.RestartPolicy.Name, 'unless-stopped', 'RestartPolicy.Name');
    const want = JSON.parse(JSON.stringify(services.app));
    want.config.restart = 'unless-stopped';
    svcEqual(want, svcFromDocker(i), i.Id);
  });

  await check('stop, then stop again 304', async () => {
    await ctr.app.stop({ t: 10 });
    const i = await ctr.app.inspect();
    assert(!i.State.Running, `State ${JSON.stringify(i.State)}`);
    eq(i.State.ExitCode, 0, 'ExitCode (the service exits 0 on SIGTERM)');
    await expectStatus(ctr.app.stop({ t: 10 }), 304, 'second stop');
  });

  await check('remove v=1 force=1', async () => {
    for (const mode of Object.keys(ctr)) await ctr[mode].remove({ v: true, force: true });
    for (const mode of Object.keys(ctr)) await expectStatus(ctr[mode].inspect(), 404, `${mode} after remove`);
  });

  await check('events: start/die/destroy with status and id (service-manager)', async () => {
    const id = ctr.app && ctr.app.id;
    if (!id) skip('no container');
    await waitFor(() => ev.got.some((e) => e.Action === 'destroy' && e.Actor && e.Actor.ID === id), 10000, 'destroy event');
    const mine = ev.got.filter((e) => e.Actor && e.Actor.ID === id);
    for (const a of ['start', 'die', 'destroy']) {
      const e = mine.find((x) => x.Action === a);
      assert(e, `no ${a} event: ${JSON.stringify(mine.map((x) => x.Action))}`);
      eq([e.status, e.id], [a, id], `the agent's fields (status, id) of ${a}`);
      eq(e.from, IMAGE, `from of ${a}`);
    }
    const names = mine.filter((x) => x.Action === 'rename');
    assert(names.length === 1 && names[0].Actor.Attributes.oldName === `/main_101_${releaseId}_${commit}`, `rename event ${JSON.stringify(names)}`);
  });
  ev.close();

  await check('404s: container, network, volume, image', async () => {
    await expectStatus(d.getContainer('main_101_1_x').inspect(), 404, 'container inspect');
    await expectStatus(d.getContainer('main_101_1_x').remove({ v: true, force: true }), 404, 'container remove');
    await expectStatus(d.getNetwork(`${appUuid}_nope`).inspect(), 404, 'network inspect');
    await expectStatus(d.getVolume(`${appId}_nope`).inspect(), 404, 'volume inspect');
    await expectStatus(d.getImage('registry2.balena-cloud.com/v2/deadbeef@sha256:' + '0'.repeat(64)).inspect(), 404, 'image inspect');
  });

  await check('app networks removed by id (network.remove)', async () => {
    const all = await d.listNetworks();
    const ids = all.filter((n) => n.Name.startsWith(`${appUuid}_`)).map((n) => n.Id);
    eq(ids.length, 2, 'app networks listed');
    await Promise.all(ids.map((id) => d.getNetwork(id).remove()));
    await expectStatus(d.getNetwork(`${appUuid}_default`).inspect(), 404, 'after remove');
    await d.getVolume(`${appId}_data`).remove();
  });

  for (const c of created) { try { await c.remove({ force: true, v: true }); } catch (e) { /* gone */ } }
  summary();
}

main().catch((e) => { console.log(`FAIL suite: ${e && e.stack ? e.stack.split('\n').join(' | ') : e}`); process.exit(1); });
