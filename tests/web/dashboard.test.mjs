// dashboard.test.mjs - end-to-end test of the dashboard in headless Chromium (playwright-core) against one mqbroker serving three queues: the overview of all queues (a damaged one in red), a queue's own view and its URL (click, bookmark, back, unknown name), live values, the "Broker unreachable" banner, recovery without a reload, no console errors. Run by dashboard_test.sh.
//
// node dashboard.test.mjs --broker MQBROKER --web-root DIR --queue A --queue B --garbage C --out DIR
//                         --profile DIR --mqload MQLOAD [--mqctl MQCTL] [--chromium PATH] [--pidfile FILE]
// Queues A and B are created by the broker (A: 256 x 1024 bytes, B: 64 x
// 512); C must be a file of garbage in /dev/shm already, which the broker
// reports damaged. Starts the broker itself (and restarts it on the same
// port), so that the page sees a real outage; prints "PASS ..." and exits 0,
// or "FAIL: ..." and 1.

import { spawn, execFile } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, writeFileSync, createWriteStream } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { chromium } from 'playwright-core';

const { values: opt } = parseArgs({
	options: {
		broker: { type: 'string' },
		'web-root': { type: 'string' },
		queue: { type: 'string', multiple: true },
		garbage: { type: 'string' },
		out: { type: 'string' },
		profile: { type: 'string' },
		mqload: { type: 'string' },
		mqctl: { type: 'string' },
		chromium: { type: 'string', default: '/usr/bin/chromium' },
		pidfile: { type: 'string' },
	},
});
for (const k of ['broker', 'web-root', 'garbage', 'out', 'profile'])
	if (!opt[k])
		die(`--${k} is required`);
if (!opt.queue || opt.queue.length !== 2)
	die('--queue is required twice (the two queues the broker creates)');
if (!opt.mqload)
	die('--mqload is required (with --mqctl too, messages are sent and received with mqctl)');

const [QA, QB] = opt.queue;
const QC = opt.garbage;
const GEOMETRY = { [QA]: [256, 1024], [QB]: [64, 512] };
const WAIT_MS = 10000; // for the page to show a value (it polls once a second)
const t0 = Date.now();
const log = msg => console.log(`[${((Date.now() - t0) / 1000).toFixed(1).padStart(5)}s] ${msg}`);

function die(msg) {
	console.error(`FAIL: web_dashboard: ${msg}`);
	process.exit(1);
}

/* hashOf: the URL fragment of queue NAME's view, as the page must make it. */
const hashOf = name => `#/queues/${encodeURIComponent(name.slice(1))}`;

/* ---- the broker ---------------------------------------------------------- */

let broker = null; // {proc, pid, port, exited (promise)}
mkdirSync(opt.out, { recursive: true });
const brokerLog = createWriteStream(join(opt.out, 'broker.log'), { flags: 'w' });

/*
 * startBroker: run mqbroker on the test's three queues, listening on
 * 127.0.0.1:PORT (0: any free port); resolves once it says "serving ... on
 * http://...". It runs under setpriv --pdeathsig KILL, so it dies with this
 * script whatever happens; its pid also goes to --pidfile, for the shell
 * script's trap.
 */
async function startBroker(port) {
	const args = ['--pdeathsig', 'KILL', '--', opt.broker,
		'-q', `${QA}:${GEOMETRY[QA].join(':')}`, '-q', `${QB}:${GEOMETRY[QB].join(':')}`, '-q', QC,
		'-l', `127.0.0.1:${port}`, '--web-root', opt['web-root']];
	const proc = spawn('setpriv', args, { stdio: ['ignore', 'ignore', 'pipe'] });
	const exited = once(proc, 'exit');
	if (opt.pidfile)
		writeFileSync(opt.pidfile, `${proc.pid}\n`);
	let buf = '';
	const serving = new Promise((resolve, reject) => {
		const timer = setTimeout(() => reject(new Error(`mqbroker said nothing about serving within 10 s:\n${buf}`)), 10000);
		proc.stderr.on('data', chunk => {
			brokerLog.write(chunk);
			buf += chunk;
			const m = /serving (.+?) on http:\/\/127\.0\.0\.1:(\d+)\/ \(pid (\d+)\)/.exec(buf);
			if (m) {
				clearTimeout(timer);
				resolve({ what: m[1], port: Number(m[2]), pid: Number(m[3]) });
			}
		});
		exited.then(([code, sig]) => {
			clearTimeout(timer);
			reject(new Error(`mqbroker exited (${code ?? sig}) before serving:\n${buf}`));
		});
	});
	const s = await serving;
	broker = { proc, pid: s.pid, port: s.port, what: s.what, exited, buf: () => buf };
	return broker;
}

/* stopBroker: SIGTERM, and wait until it has gone (it must stop cleanly: exit 0). */
async function stopBroker() {
	const b = broker;
	broker = null;
	b.proc.kill('SIGTERM');
	const timer = setTimeout(() => b.proc.kill('SIGKILL'), 10000);
	const [code, sig] = await b.exited;
	clearTimeout(timer);
	if (code !== 0)
		throw new Error(`mqbroker (pid ${b.pid}) exited ${code ?? sig} on SIGTERM, want 0:\n${b.buf()}`);
}

/* getStatus: the broker's /status, as node reads it (the reference the page is checked against). */
async function getStatus(url) {
	const r = await fetch(`${url}status`, { cache: 'no-store' });
	if (!r.ok)
		throw new Error(`GET /status answered ${r.status}`);
	return r.json();
}

/* ---- messages: mqctl when given, else mqload ----------------------------- */

function run(cmd, args) {
	return new Promise((resolve, reject) => {
		execFile(cmd, args, { timeout: 15000, maxBuffer: 16 << 20, encoding: 'buffer' }, (err, stdout, stderr) => {
			if (err)
				reject(new Error(`${cmd} ${args.join(' ')} failed (${err.code ?? err.signal}): ${stderr}`));
			else
				resolve(stdout);
		});
	});
}

const sender = opt.mqctl ? 'mqctl' : 'mqload';
let batch = 10; // mqload's producer id for each batch: a receiver checks each producer's order
async function send(q, count, size) {
	if (opt.mqctl)
		return run(opt.mqctl, ['send', '-q', q, '--timeout', '5000', ...Array(count).fill('m'.repeat(size))]);
	return run(opt.mqload, ['send', q, String(count), '--size', String(size), '--id', String(batch++)]);
}
async function recv(q, count) {
	if (opt.mqctl) {
		// One line each: the test's messages hold no newline.
		return run(opt.mqctl, ['recv', '-q', q, '-n', String(count), '--timeout', '5000', '--format', 'line']);
	}
	return run(opt.mqload, ['recv', q, String(count)]);
}

/* hold: an mqload client of queue A that attaches, sends / receives, and stays attached; resolves with its pid. */
const holders = [];
function hold(args) {
	return new Promise((resolve, reject) => {
		const proc = spawn(opt.mqload, ['hold', QA, ...args, '--seconds', '120'], { stdio: ['ignore', 'pipe', 'pipe'] });
		holders.push(proc);
		let out = '', err = '';
		const timer = setTimeout(() => reject(new Error(`mqload hold ${args.join(' ')}: not holding after 10 s: ${err}`)), 10000);
		proc.stderr.on('data', d => { err += d; });
		proc.stdout.on('data', d => {
			out += d;
			const m = /holding \S+ pid (\d+)/.exec(out);
			if (m) {
				clearTimeout(timer);
				resolve({ proc, pid: Number(m[1]) });
			}
		});
		proc.on('exit', code => {
			clearTimeout(timer);
			reject(new Error(`mqload hold ${args.join(' ')} exited ${code}: ${err}`));
		});
	});
}

/* ---- the browser ----------------------------------------------------------- */

let context = null;
const consoleErrors = [];
const foreign = [];
let brokerDown = false; // while true, failed polls of /status are expected
let tolerated = 0;      // the browser's reports of those failed polls

/* watch: collect PAGE's console errors, uncaught exceptions and requests to other origins than URL. */
function watch(page, url) {
	page.setDefaultTimeout(WAIT_MS);
	page.on('console', msg => {
		if (msg.type() !== 'error')
			return;
		const where = msg.location() && msg.location().url || '';
		// The browser's own report of a poll that failed while the broker is down.
		const expected = /^Failed to load resource: net::ERR_[A-Z_]+$/.test(msg.text()) && /\/status$/.test(where);
		if (expected && brokerDown)
			tolerated++;
		else
			consoleErrors.push(`${msg.text()} (${where})`);
	});
	page.on('pageerror', err => consoleErrors.push(`uncaught: ${err.message}`));
	page.on('request', req => {
		if (!req.url().startsWith(url) && !req.url().startsWith('data:') && req.url() !== 'about:blank')
			foreign.push(req.url());
	});
}

/* until: wait for FN(ARG) to hold in PAGE; else fail with WHAT and what DESCRIBE() says the page shows. */
async function until(page, what, fn, arg, describe) {
	try {
		await page.waitForFunction(fn, arg, { timeout: WAIT_MS, polling: 100 });
	} catch {
		throw new Error(`${what} (waited ${WAIT_MS / 1000} s): ${describe ? await describe().catch(e => e.message) : ''}`);
	}
}

/* expectValues: every [data-testid=ID] of PAGE (outside the overview's cards) reads VALUES[ID]. */
async function expectValues(page, what, values) {
	for (const [id, want] of Object.entries(values))
		await until(page, `${what}: [data-testid=${id}] should read "${want}"`, ([id, want]) => {
			const el = document.querySelector(`[data-testid="${id}"]`);
			return el && el.textContent.trim() === want;
		}, [id, String(want)], async () => `it reads "${await page.getByTestId(id).first().textContent().catch(() => '(missing)')}"`);
}

/* measuredCount: the time_in_queue_s count of queue NAME in the broker's
 * /status at URL, once it is in [LO, HI] (waits up to 10 s: the broker
 * samples once a second). */
async function measuredCount(url, name, lo, hi) {
	let n = -1;
	for (const end = Date.now() + 10000; Date.now() < end; await new Promise(r => setTimeout(r, 200))) {
		const q = (await getStatus(url)).queues.find(x => x.name === name);
		n = q && q.time_in_queue_s ? q.time_in_queue_s.count : -1;
		if (n >= lo && n <= hi)
			return n;
	}
	throw new Error(`${name}: /status time_in_queue_s.count is ${n}, want ${lo}..${hi}`);
}

/* cardFields: in PAGE, the overview's cards in order: {queue, state, href, visible, fields {qc-...: text, "" when not shown}}. */
function cardFields(page) {
	return page.evaluate(() => [...document.querySelectorAll('[data-testid="queue-card"]')].map(c => ({
		queue: c.dataset.queue,
		state: c.dataset.state,
		href: c.getAttribute('href'),
		visible: c.offsetParent !== null,
		fields: Object.fromEntries([...c.querySelectorAll('[data-testid^="qc-"]')].map(e =>
			[e.dataset.testid, e.offsetParent === null ? '' : e.textContent.trim()])),
	})));
}

/* expectCard: the card of queue NAME shows WANT ({qc-depth: "7", ...}; "" for a field not shown). */
async function expectCard(page, what, name, want) {
	await until(page, `${what}: the overview's card of ${name} should show ${JSON.stringify(want)}`, ([name, want]) => {
		const c = [...document.querySelectorAll('[data-testid="queue-card"]')].find(x => x.dataset.queue === name);
		if (!c || c.offsetParent === null)
			return false;
		return Object.entries(want).every(([k, v]) => {
			const e = c.querySelector(`[data-testid="${k}"]`);
			return e && (e.offsetParent === null ? '' : e.textContent.trim()) === v;
		});
	}, [name, want], async () => `the cards: ${JSON.stringify(await cardFields(page))}`);
}

/* expectView: PAGE shows VIEW ("overview", "detail" or "no-such-queue") and no other, with the URL fragment HASH. */
async function expectView(page, what, view, hash) {
	await until(page, `${what}: the page should show the ${view} view at "${hash}"`, ([view, hash]) => {
		const shown = v => { const el = document.querySelector(`[data-testid="${v}"]`); return el && el.offsetParent !== null; };
		return location.hash === hash && ['overview', 'detail', 'no-such-queue'].every(v => shown(v) === (v === view));
	}, [view, hash], () => page.evaluate(() => `fragment "${location.hash}", view "${document.body.dataset.view}"`));
}

/*
 * checkOverview: the page shows one card per element of /status's "queues",
 * in order, with its numbers; a queue not "ok" in red with its error text;
 * each bar as long as depth / capacity; each card linking to its view.
 */
async function checkOverview(page, url, what) {
	const doc = await getStatus(url);
	const names = doc.queues.map(q => q.name);
	if (JSON.stringify(names.slice().sort()) !== JSON.stringify([QA, QB, QC].sort()))
		throw new Error(`${what}: /status lists ${JSON.stringify(names)}, want the test's three queues`);
	for (const q of doc.queues) {
		// A number /status leaves out shows "—"; a queue that is not "ok" and has no depth shows its error instead of depth and bar.
		const dash = v => (v == null ? '—' : String(v));
		const depth = v => (q.depth == null && q.state !== 'ok' ? '' : dash(v));
		await expectCard(page, what, q.name, { 'qc-name': q.name, 'qc-state': q.state, 'qc-error': q.state === 'ok' ? '' : q.error,
			'qc-depth': depth(q.depth), 'qc-capacity': depth(q.capacity), 'qc-clients': dash(q.clients_attached) });
	}
	const cards = await cardFields(page);
	if (JSON.stringify(cards.map(c => c.queue)) !== JSON.stringify(names))
		throw new Error(`${what}: the cards are ${JSON.stringify(cards.map(c => c.queue))}, want /status's order ${JSON.stringify(names)}`);
	for (const c of cards)
		if (c.href !== hashOf(c.queue))
			throw new Error(`${what}: the card of ${c.queue} links to "${c.href}", want "${hashOf(c.queue)}"`);
	// Colours and bars, as the browser computed them.
	const look = await page.evaluate(() => {
		const probe = document.createElement('span');
		probe.style.color = 'var(--bad)';
		document.body.append(probe);
		const bad = getComputedStyle(probe).color;
		probe.remove();
		return { bad, cards: [...document.querySelectorAll('[data-testid="queue-card"]')].map(c => ({
			queue: c.dataset.queue,
			border: getComputedStyle(c).borderLeftColor,
			stateBg: getComputedStyle(c.querySelector('[data-testid="qc-state"]')).backgroundColor,
			errorColor: getComputedStyle(c.querySelector('[data-testid="qc-error"]')).color,
			barShown: c.querySelector('.bar').offsetParent !== null,
			sparkShown: c.querySelector('canvas').offsetParent !== null,
			bar: Number((/scaleX\(([^)]*)\)/.exec(c.querySelector('.bar-fill').style.transform) || [])[1]),
		})) };
	});
	for (const q of doc.queues) {
		const c = look.cards.find(x => x.queue === q.name);
		const red = c.border === look.bad && c.stateBg === look.bad;
		if (q.state !== 'ok' && !(red && c.errorColor === look.bad))
			throw new Error(`${what}: the ${q.state} queue ${q.name} is not in red (${look.bad}): border ${c.border}, badge ${c.stateBg}, error text ${c.errorColor}`);
		if (q.state === 'ok' && (c.border === look.bad || c.stateBg === look.bad))
			throw new Error(`${what}: the healthy queue ${q.name} is drawn in red`);
		if (q.depth == null && q.state !== 'ok') {
			if (c.barShown || c.sparkShown)
				throw new Error(`${what}: the card of ${q.name}, which has no depth, shows a bar or a sparkline`);
			continue;
		}
		if (!c.barShown || !c.sparkShown)
			throw new Error(`${what}: the card of ${q.name} shows no depth bar or no sparkline`);
		const want = q.capacity ? q.depth / q.capacity : 0;
		if (!(Math.abs(c.bar - want) <= 1e-5 * Math.max(want, 0.01))) // CSS keeps 6 significant digits
			throw new Error(`${what}: the bar of ${q.name} is ${c.bar} long, want ${want} (${q.depth ?? '—'} of ${q.capacity ?? '—'})`);
	}
	return doc;
}

/* inkedPixels: in PAGE, the pixels of the canvas SELECTOR (top TOP of its height) drawn in one of the CSS COLORS (variables), or at all when COLORS is empty. */
function inkedPixels(page, selector, colors = [], top = 1) {
	return page.evaluate(([selector, colors, top]) => {
		const canvas = typeof selector === 'string' ? document.querySelector(selector)
			: [...document.querySelectorAll('[data-testid="queue-card"]')].find(c => c.dataset.queue === selector.card).querySelector('canvas');
		const rgb = colors.map(v => {
			const probe = document.createElement('span');
			probe.style.color = `var(${v})`;
			document.body.append(probe);
			const m = getComputedStyle(probe).color.match(/\d+/g).map(Number);
			probe.remove();
			return m;
		});
		const h = Math.max(1, Math.floor(canvas.height * top));
		const d = canvas.getContext('2d').getImageData(0, 0, canvas.width, h).data;
		let n = 0;
		for (let i = 0; i < d.length; i += 4) {
			if (d[i + 3] < 100) // not the faint fills
				continue;
			if (!rgb.length || rgb.some(c => Math.abs(c[0] - d[i]) + Math.abs(c[1] - d[i + 1]) + Math.abs(c[2] - d[i + 2]) < 40))
				n++;
		}
		return n;
	}, [selector, colors, top]);
}

/* noSideScroll: at the current width, neither the page nor a table of PAGE is cut off sideways. */
async function noSideScroll(page, what) {
	const overflow = await page.evaluate(() => [document.documentElement.scrollWidth - window.innerWidth,
		...[...document.querySelectorAll('.table-wrap')].filter(w => w.offsetParent !== null).map(w => w.scrollWidth - w.clientWidth)]);
	if (overflow[0] > 0)
		throw new Error(`${what}: at 390 px wide the page scrolls sideways by ${overflow[0]} px`);
	if (Math.max(0, ...overflow.slice(1)) > 0)
		throw new Error(`${what}: at 390 px wide the clients table is cut off by ${Math.max(...overflow.slice(1))} px`);
}

async function cleanup() {
	if (context)
		await context.close().catch(() => {});
	for (const p of holders)
		if (p.exitCode === null && p.signalCode === null)
			p.kill('SIGKILL');
	if (broker) {
		broker.proc.kill('SIGKILL');
		await broker.exited;
	}
	brokerLog.end();
}

async function main() {
	let b = await startBroker(0);
	const url = `http://127.0.0.1:${b.port}/`;
	log(`mqbroker pid ${b.pid}: serving ${b.what} at ${url} (${QA}, ${QB}; ${QC} is garbage); messages via ${sender}`);

	context = await chromium.launchPersistentContext(opt.profile, {
		executablePath: opt.chromium,
		headless: true,
		args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
			'--disable-component-update', '--disable-sync', '--disable-quic'],
		viewport: { width: 1280, height: 860 },
		deviceScaleFactor: 1,
		timeout: 60000,
	});
	const page = context.pages()[0] || await context.newPage();
	watch(page, url);
	const responses = new Map();
	page.on('response', r => responses.set(new URL(r.url()).pathname, r));
	const banner = page.getByTestId('banner');

	// --- the overview: three queues, the garbage one damaged, in red -------------------
	const resp = await page.goto(url, { waitUntil: 'load' });
	if (!resp || resp.status() !== 200)
		throw new Error(`GET / answered ${resp && resp.status()}`);
	await expectView(page, 'GET /', 'overview', '');
	await expectValues(page, 'first render', { subtitle: '3 queues', 'broker-pid': b.pid });
	let doc = await checkOverview(page, url, 'first render');
	const damaged = doc.queues.find(q => q.name === QC);
	if (damaged.state !== 'damaged' || !damaged.error)
		throw new Error(`/status shows the garbage queue ${QC} as ${JSON.stringify(damaged)}, want "state": "damaged" with an "error"`);
	await expectCard(page, 'first render', QA, { 'qc-depth': '0', 'qc-capacity': '256', 'qc-fill': '0% full', 'qc-in': '0', 'qc-out': '0', 'qc-oldest': 'none' });
	await expectCard(page, 'first render', QB, { 'qc-depth': '0', 'qc-capacity': '64' });
	await expectCard(page, 'first render', QC, { 'qc-depth': '', 'qc-in': '—', 'qc-out': '—', 'qc-oldest': '—', 'qc-clients': '—' });
	if (await banner.isVisible())
		throw new Error('the "Broker unreachable" banner shows while the broker answers');
	for (const [path, type, cache] of [['/', 'text/html', 'no-cache'], ['/dashboard.css', 'text/css', 'max-age=300'],
		['/dashboard.js', 'text/javascript', 'max-age=300'], ['/chart.js', 'text/javascript', 'max-age=300'],
		['/format.js', 'text/javascript', 'max-age=300'], ['/overview.js', 'text/javascript', 'max-age=300'],
		['/queue.js', 'text/javascript', 'max-age=300']]) {
		const r = responses.get(path);
		if (!r)
			throw new Error(`the page did not load ${path}`);
		const h = await r.allHeaders();
		if (!(h['content-type'] || '').startsWith(type) || h['cache-control'] !== cache)
			throw new Error(`${path}: Content-Type "${h['content-type']}", Cache-Control "${h['cache-control']}"; want ${type}, ${cache}`);
	}
	// A marker that a reload would wipe out: recovery must happen in place.
	await page.evaluate(() => { window.__noReload = 'still here'; });
	log(`overview: ${QA} 0 of 256, ${QB} 0 of 64, ${QC} damaged in red: "${damaged.error}"`);

	await send(QA, 7, 100);
	await send(QB, 3, 50);
	await expectCard(page, 'after sending 7 to A and 3 to B', QA, { 'qc-depth': '7', 'qc-fill': '2.7% full' });
	await expectCard(page, 'after sending 7 to A and 3 to B', QB, { 'qc-depth': '3', 'qc-fill': '4.7% full' });
	doc = await checkOverview(page, url, `after sending 7 to ${QA} and 3 to ${QB}`);
	await page.waitForTimeout(2200); // a few samples of depth 7 for the sparklines
	const [inkA, inkB] = [await inkedPixels(page, { card: QA }, ['--accent'], 0.7), await inkedPixels(page, { card: QB }, ['--accent'], 0.7)];
	if (inkA < 20 || inkB < 20)
		throw new Error(`the sparklines of ${QA} (depth 7) and ${QB} (depth 3) draw ${inkA} and ${inkB} pixels in the depth colour above their bottom 30%, want a line each`);
	log(`sent 7 x 100 bytes to ${QA}, 3 x 50 to ${QB}: the overview matches /status; sparklines drawn (${inkA}, ${inkB} px)`);

	// --- a click opens the queue's own view, with its URL -----------------------------
	await page.click(`[data-testid="queue-card"][data-queue="${QA}"]`);
	await expectView(page, `a click on ${QA}'s card`, 'detail', hashOf(QA));
	await expectValues(page, `${QA}'s view`, { 'queue-name': QA, 'queue-state': 'ok', depth: 7, capacity: 256, enqueued: 7, dequeued: 0,
		'bytes-enqueued': 700, 'max-msg-size': 1024, 'high-water': 7, 'broker-pid': b.pid });
	if (await page.getByTestId('damaged').isVisible())
		throw new Error(`the "damaged" banner shows on the view of the healthy ${QA}`);
	log(`click: ${page.url().slice(url.length - 1)} shows ${QA}: depth 7 of 256, enqueued 7, bytes 700`);

	// --- messages out: depth, totals, time in queue ---------------------------------------
	await recv(QA, 3);
	await expectValues(page, `after receiving 3 messages with ${sender}`,
		{ depth: 4, enqueued: 7, dequeued: 3, 'bytes-enqueued': 700, 'bytes-dequeued': 300, 'high-water': 7, 'fill-pct': '1.6% full' });
	// How many of them were measured: all of a slow producer's messages, a
	// sample of a fast one's (these were sent back to back): the page shows
	// the broker's count, 1 to 3.
	const measured3 = await measuredCount(url, QA, 1, 3);
	await expectValues(page, 'time in queue of the 3 received', { 'tiq-count': measured3 });
	const timeText = /^\d+(\.\d+)? (ns|µs|ms|s)$|^\d+m \d\ds$/;
	for (const id of ['tiq-p50', 'tiq-p90', 'tiq-p99', 'tiq-max', 'oldest-age'])
		await until(page, `after receiving 3: [data-testid=${id}] should show a time`, ([id, re]) =>
			new RegExp(re).test(document.querySelector(`[data-testid="${id}"]`).textContent.trim()), [id, timeText.source],
		async () => `it reads "${await page.getByTestId(id).textContent()}"`);
	log(`received 3: depth 4, dequeued 3; time in queue p50 ${await page.getByTestId('tiq-p50').textContent()}, ` +
		`p99 ${await page.getByTestId('tiq-p99').textContent()}, oldest waiting ${await page.getByTestId('oldest-age').textContent()}`);
	await page.waitForTimeout(1500); // some history for the charts
	await recv(QA, 4);
	const measured7 = await measuredCount(url, QA, measured3 + 1, 7);
	await expectValues(page, 'after receiving the other 4', { depth: 0, dequeued: 7, 'bytes-dequeued': 700, 'tiq-count': measured7, 'oldest-age': 'none' });
	const tiqInk = await inkedPixels(page, '[data-testid="tiq-chart"]', ['--p50', '--p90', '--p99']);
	await page.mouse.move(0, 0); // no hover read-out or highlight in the screenshots
	if (tiqInk < 20)
		throw new Error(`the time-in-queue chart draws ${tiqInk} pixels in the p50/p90/p99 colours, want its lines`);
	const st = (await getStatus(url)).queues.find(q => q.name === QA).time_in_queue_s;
	if (!st || st.count !== measured7 || !(st.p50 > 0 && st.p50 <= st.p90 && st.p90 <= st.p99 && st.max > 0))
		throw new Error(`/status's time_in_queue_s of ${QA} is ${JSON.stringify(st)}: want count 7, 0 < p50 <= p90 <= p99 and max > 0`);
	log(`received 4: depth 0, dequeued 7, ${measured7} of them timed; the time-in-queue chart is drawn (${tiqInk} px)`);

	// --- the clients table: a producer and a consumer that stay, one that dies -----
	const producer = await hold(['--send', '2', '--size', '100', '--id', '2']);
	const consumer = await hold(['--recv', '1']);
	const victim = await hold(['--send', '1', '--size', '100', '--id', '3']);
	const expectClient = async (c, what, want) => {
		await until(page, `${what}: a client row for pid ${c.pid} with ${JSON.stringify(want)}`, ([pid, want]) => {
			const tr = document.querySelector(`[data-testid="clients"] tr[data-pid="${pid}"]`);
			if (!tr)
				return false;
			const cell = id => tr.querySelector(`[data-testid="${id}"]`).textContent.trim();
			return Object.entries(want).every(([k, v]) => cell(k) === v);
		}, [c.pid, want], async () => `rows: ${JSON.stringify(await page.locator('[data-testid="clients"] tbody tr').allTextContents())}`);
	};
	await expectClient(producer, 'a producer holding on', { 'client-pid': String(producer.pid), 'client-role': 'producer', 'client-sent': '2', 'client-state': 'alive' });
	await expectClient(consumer, 'a consumer holding on', { 'client-role': 'consumer', 'client-received': '1', 'client-state': 'alive' });
	await expectValues(page, 'three clients attached', { 'clients-attached': 3, depth: 2, enqueued: 10, dequeued: 8, recoveries: 0 });
	victim.proc.kill('SIGKILL');
	await expectClient(victim, 'a client killed while attached', { 'client-role': 'producer', 'client-state': 'recovered' });
	await expectValues(page, 'after a client died attached', { 'clients-attached': 2, recoveries: 1, producers: 1, consumers: 1 });
	log(`clients: producer ${producer.pid} and consumer ${consumer.pid} alive, ${victim.pid} killed and recovered`);

	// --- a lease: in flight while held; delivered again when its holder dies --------
	const leaser = await hold(['--recv', '1', '--lease']);
	await expectClient(leaser, 'a consumer holding a lease', { 'client-role': 'consumer', 'client-in-flight': '1', 'client-state': 'alive' });
	await expectValues(page, 'one message leased', { 'in-flight': 1, depth: 1 });
	leaser.proc.kill('SIGKILL');
	await expectValues(page, 'after the lease holder died', { 'in-flight': 0, depth: 2, recoveries: 2 });
	log(`lease: ${leaser.pid} held one (in flight 1), killed: delivered again (in flight 0, depth 2)`);

	// A few more seconds of history for the charts, then the screenshots.
	await send(QA, 5, 200);
	await expectValues(page, 'after 5 more messages', { depth: 7, enqueued: 15, 'bytes-enqueued': 2000, 'high-water': 7 });
	await page.waitForTimeout(2500);
	await page.screenshot({ path: join(opt.out, 'dashboard-queue.png'), fullPage: true });
	await page.setViewportSize({ width: 390, height: 844 });
	await page.waitForTimeout(400);
	await noSideScroll(page, `${QA}'s view`);
	await page.screenshot({ path: join(opt.out, 'dashboard-queue-narrow.png'), fullPage: true });
	await page.setViewportSize({ width: 1280, height: 860 });

	// --- back: the overview again, up to date ------------------------------------------
	await page.goBack();
	await expectView(page, 'the back button', 'overview', '');
	await expectCard(page, 'back on the overview', QA, { 'qc-depth': '7', 'qc-clients': '2', 'qc-fill': '2.7% full' });
	await checkOverview(page, url, 'back on the overview');
	await page.waitForTimeout(1200);
	await page.screenshot({ path: join(opt.out, 'dashboard.png'), fullPage: true });
	await page.setViewportSize({ width: 390, height: 844 });
	await page.waitForTimeout(400);
	await noSideScroll(page, 'the overview');
	await page.screenshot({ path: join(opt.out, 'dashboard-narrow.png'), fullPage: true });
	await page.setViewportSize({ width: 1280, height: 860 });
	log('back: the overview, matching /status; screenshots: dashboard.png, dashboard-queue.png and both at 390 px');

	// --- a bookmarked queue URL, and URLs naming no queue, in a second tab ----------------
	const tab = await context.newPage();
	watch(tab, url);
	await tab.goto(url + hashOf(QB), { waitUntil: 'load' });
	await expectView(tab, `loading ${hashOf(QB)}`, 'detail', hashOf(QB));
	await expectValues(tab, `${QB}'s bookmarked view`, { 'queue-name': QB, depth: 3, capacity: 64, 'max-msg-size': 512, enqueued: 3, 'bytes-enqueued': 150 });
	log(`bookmark: ${hashOf(QB)} opens ${QB}: depth 3 of 64`);
	const nope = `${QA}-nope`;
	for (const [hash, name] of [[hashOf(nope), nope], ['#/queues/%E0%A4%A', '/%E0%A4%A']]) {
		await tab.goto('about:blank');
		await tab.goto(url + hash, { waitUntil: 'load' });
		await expectView(tab, `loading ${hash}`, 'no-such-queue', hash);
		await expectValues(tab, `${hash}`, { 'missing-name': name });
	}
	// Typed into the address bar of a page already open: the same message.
	await tab.evaluate(h => { location.hash = h; }, hashOf(nope));
	await expectView(tab, `going to ${hashOf(nope)} from another view`, 'no-such-queue', hashOf(nope));
	await tab.screenshot({ path: join(opt.out, 'dashboard-missing.png') });
	await tab.getByTestId('missing-back').click();
	await expectView(tab, 'the link back from "no such queue"', 'overview', '#/');
	await tab.close();
	log(`unknown: ${hashOf(nope)} (and a malformed one) say "no such queue" with a link back to the overview`);

	// --- the broker stops: the banner ----------------------------------------------
	brokerDown = true;
	const port = b.port, oldPid = b.pid;
	await stopBroker();
	log(`stopped mqbroker pid ${oldPid}`);
	await until(page, `a banner starting with "Broker unreachable" within ${WAIT_MS / 1000} s of stopping the broker`, () => {
		const el = document.querySelector('[data-testid="banner"]');
		return el && !el.hidden && el.offsetParent !== null && el.textContent.startsWith('Broker unreachable');
	}, null, async () => `banner: "${await banner.textContent()}", hidden: ${await banner.isHidden()}`);
	log(`banner: "${(await banner.textContent()).trim()}" (${tolerated} failed polls reported by the browser)`);
	// The last values stay on the page while the broker is away.
	await expectCard(page, 'while the broker is down', QA, { 'qc-depth': '7' });
	await expectCard(page, 'while the broker is down', QC, { 'qc-state': 'damaged' });
	await page.screenshot({ path: join(opt.out, 'dashboard-unreachable.png') });

	// --- the broker comes back on the same port: recovery without a reload --------
	b = await startBroker(port);
	log(`restarted mqbroker on port ${port}: pid ${b.pid}`);
	try {
		await banner.waitFor({ state: 'hidden', timeout: WAIT_MS });
	} catch {
		throw new Error(`the banner still shows ${WAIT_MS / 1000} s after the broker came back: "${await banner.textContent()}"`);
	}
	await expectValues(page, 'after the broker came back', { 'broker-pid': b.pid });
	brokerDown = false;
	await checkOverview(page, url, 'after the broker came back');
	await page.click(`[data-testid="queue-card"][data-queue="${QA}"]`);
	await expectView(page, `a click on ${QA}'s card after the restart`, 'detail', hashOf(QA));
	await expectValues(page, 'after the broker came back', { depth: 7, enqueued: 15, dequeued: 8, recoveries: 2 });
	await send(QA, 2, 100);
	await recv(QA, 4);
	await expectValues(page, 'messages after the restart', { depth: 5, enqueued: 17, dequeued: 12, 'bytes-dequeued': 1400 });
	if (await page.evaluate(() => window.__noReload) !== 'still here')
		throw new Error('the page was reloaded to recover');
	log('recovered in place: banner gone, new pid shown, depth 5, enqueued 17, dequeued 12');
	await page.mouse.move(0, 0);
	await page.waitForTimeout(1500);
	await page.screenshot({ path: join(opt.out, 'dashboard-queue.png'), fullPage: true });

	if (foreign.length)
		throw new Error(`the page made requests to other origins: ${foreign.join(', ')}`);
	if (consoleErrors.length)
		throw new Error(`console errors:\n  ${consoleErrors.join('\n  ')}`);
	for (const c of [producer, consumer]) {
		c.proc.kill('SIGTERM');
		await once(c.proc, 'exit');
	}
	await stopBroker();
	log(`screenshots in ${opt.out}`);
}

const watchdog = setTimeout(() => {
	console.error('FAIL: web_dashboard: the test did not finish within 150 s');
	cleanup().finally(() => process.exit(1));
}, 150000);

try {
	await main();
	clearTimeout(watchdog);
	await cleanup();
	console.log('PASS web_dashboard: overview of three queues (damaged one in red), queue view by click, bookmark and back, ' +
		'"no such queue", time in queue, live values, banner on outage, recovery without reload, no console errors');
	process.exit(0);
} catch (err) {
	clearTimeout(watchdog);
	console.error(`FAIL: web_dashboard: ${err.message}`);
	if (context) {
		const page = context.pages()[0];
		if (page)
			await page.screenshot({ path: join(opt.out, 'dashboard-failure.png'), fullPage: true }).catch(() => {});
	}
	if (consoleErrors.length && !err.message.startsWith('console errors'))
		console.error(`console errors so far:\n  ${consoleErrors.join('\n  ')}`);
	await cleanup();
	process.exit(1);
}
