// dashboard.test.mjs - end-to-end test of the dashboard in headless Chromium (playwright-core): live values, the "Broker unreachable" banner, recovery without a reload, no console errors. Run by dashboard_test.sh.
//
// node dashboard.test.mjs --broker MQBROKER --web-root DIR --queue NAME --out DIR --profile DIR
//                         --mqload MQLOAD [--mqctl MQCTL] [--chromium PATH] [--pidfile FILE]
// Starts the broker itself (and restarts it on the same port), so that the
// page sees a real outage; prints "PASS ..." and exits 0, or "FAIL: ..." and 1.

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
		queue: { type: 'string' },
		out: { type: 'string' },
		profile: { type: 'string' },
		mqload: { type: 'string' },
		mqctl: { type: 'string' },
		chromium: { type: 'string', default: '/usr/bin/chromium' },
		pidfile: { type: 'string' },
	},
});
for (const k of ['broker', 'web-root', 'queue', 'out', 'profile'])
	if (!opt[k])
		die(`--${k} is required`);
if (!opt.mqload)
	die('--mqload is required (with --mqctl too, messages are sent and received with mqctl)');

const Q = opt.queue;
const WAIT_MS = 10000; // for the page to show a value (it polls once a second)
const t0 = Date.now();
const log = msg => console.log(`[${((Date.now() - t0) / 1000).toFixed(1).padStart(5)}s] ${msg}`);

function die(msg) {
	console.error(`FAIL: web_dashboard: ${msg}`);
	process.exit(1);
}

/* ---- the broker ---------------------------------------------------------- */

let broker = null; // {proc, pid, port, exited (promise)}
mkdirSync(opt.out, { recursive: true });
const brokerLog = createWriteStream(join(opt.out, 'broker.log'), { flags: 'w' });

/*
 * startBroker: run mqbroker on the test's queue, listening on 127.0.0.1:PORT
 * (0: any free port); resolves once it says "serving NAME on http://...". It
 * runs under setpriv --pdeathsig KILL, so it dies with this script whatever
 * happens; its pid also goes to --pidfile, for the shell script's trap.
 */
async function startBroker(port) {
	const args = ['--pdeathsig', 'KILL', '--', opt.broker, '-n', Q, '-c', '256', '-m', '1024',
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
			const m = /serving (\S+) on http:\/\/127\.0\.0\.1:(\d+)\/ \(pid (\d+)\)/.exec(buf);
			if (m) {
				clearTimeout(timer);
				resolve({ port: Number(m[2]), pid: Number(m[3]) });
			}
		});
		exited.then(([code, sig]) => {
			clearTimeout(timer);
			reject(new Error(`mqbroker exited (${code ?? sig}) before serving:\n${buf}`));
		});
	});
	const s = await serving;
	broker = { proc, pid: s.pid, port: s.port, exited, buf: () => buf };
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
async function send(count, size) {
	if (opt.mqctl)
		return run(opt.mqctl, ['send', '-q', Q, '--timeout', '5000', ...Array(count).fill('m'.repeat(size))]);
	return run(opt.mqload, ['send', Q, String(count), '--size', String(size), '--id', String(batch++)]);
}
async function recv(count) {
	if (opt.mqctl) {
		const out = await run(opt.mqctl, ['recv', '-q', Q, '-n', String(count), '--timeout', '5000', '--format', 'raw']);
		return out.length;
	}
	return run(opt.mqload, ['recv', Q, String(count)]);
}

/* ---- the browser ----------------------------------------------------------- */

/* hold: an mqload client that attaches, sends / receives, and stays attached; resolves with its pid. */
const holders = [];
function hold(args) {
	return new Promise((resolve, reject) => {
		const proc = spawn(opt.mqload, ['hold', Q, ...args, '--seconds', '120'], { stdio: ['ignore', 'pipe', 'pipe'] });
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

let context = null;
const consoleErrors = [];
const foreign = [];
let brokerDown = false; // while true, failed polls of /status are expected
let tolerated = 0;      // the browser's reports of those failed polls

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
	log(`mqbroker pid ${b.pid} serves ${Q} at ${url}; messages via ${sender}`);

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
		if (!req.url().startsWith(url) && !req.url().startsWith('data:'))
			foreign.push(req.url());
	});
	const responses = new Map();
	page.on('response', r => responses.set(new URL(r.url()).pathname, r));

	const text = id => page.getByTestId(id);
	const expectText = async (id, want, what) => {
		try {
			await page.waitForFunction(([id, want]) => {
				const el = document.querySelector(`[data-testid="${id}"]`);
				return el && el.textContent.trim() === want;
			}, [id, want], { timeout: WAIT_MS, polling: 100 });
		} catch {
			const got = await text(id).textContent().catch(() => '(missing)');
			throw new Error(`${what}: [data-testid=${id}] reads "${got}", want "${want}" (waited ${WAIT_MS / 1000} s)`);
		}
	};
	const expectValues = async (what, values) => {
		for (const [id, want] of Object.entries(values))
			await expectText(id, String(want), what);
	};
	const banner = page.getByTestId('banner');

	// --- first render -----------------------------------------------------------
	const resp = await page.goto(url, { waitUntil: 'load' });
	if (!resp || resp.status() !== 200)
		throw new Error(`GET / answered ${resp && resp.status()}`);
	await expectValues('first render', { 'queue-name': Q, depth: 0, capacity: 256, enqueued: 0, dequeued: 0,
		'bytes-enqueued': 0, 'max-msg-size': 1024, 'broker-pid': b.pid });
	if (await banner.isVisible())
		throw new Error('the "Broker unreachable" banner shows while the broker answers');
	for (const [path, type, cache] of [['/', 'text/html', 'no-cache'], ['/dashboard.css', 'text/css', 'max-age=300'],
		['/dashboard.js', 'text/javascript', 'max-age=300'], ['/chart.js', 'text/javascript', 'max-age=300']]) {
		const r = responses.get(path);
		if (!r)
			throw new Error(`the page did not load ${path}`);
		const h = await r.allHeaders();
		if (!(h['content-type'] || '').startsWith(type) || h['cache-control'] !== cache)
			throw new Error(`${path}: Content-Type "${h['content-type']}", Cache-Control "${h['cache-control']}"; want ${type}, ${cache}`);
	}
	// A marker that a reload would wipe out: recovery must happen in place.
	await page.evaluate(() => { window.__noReload = 'still here'; });
	log('first render: depth 0, totals 0');

	// --- messages in, messages out ------------------------------------------------
	await send(7, 100);
	await expectValues(`after sending 7 messages of 100 bytes with ${sender}`,
		{ depth: 7, enqueued: 7, dequeued: 0, 'bytes-enqueued': 700, 'high-water': 7 });
	log('sent 7 x 100 bytes: depth 7, enqueued 7, bytes 700');
	await recv(3);
	await expectValues(`after receiving 3 messages with ${sender}`,
		{ depth: 4, enqueued: 7, dequeued: 3, 'bytes-enqueued': 700, 'bytes-dequeued': 300, 'high-water': 7 });
	log('received 3: depth 4, dequeued 3, bytes dequeued 300');
	const fill = await text('fill-pct').textContent();
	if (fill.trim() !== '1.6% full')
		throw new Error(`the gauge reads "${fill}", want "1.6% full" (4 of 256)`);
	await page.waitForTimeout(1500); // some history for the charts
	await recv(4);
	await expectValues('after receiving the other 4', { depth: 0, dequeued: 7, 'bytes-dequeued': 700 });
	log('received 4: depth 0, dequeued 7, bytes dequeued 700');

	// --- the clients table: a producer and a consumer that stay, one that dies -----
	const producer = await hold(['--send', '2', '--size', '100', '--id', '2']);
	const consumer = await hold(['--recv', '1']);
	const victim = await hold(['--send', '1', '--size', '100', '--id', '3']);
	const expectClient = async (c, what, want) => {
		try {
			await page.waitForFunction(([pid, want]) => {
				const tr = document.querySelector(`[data-testid="clients"] tr[data-pid="${pid}"]`);
				if (!tr)
					return false;
				const cell = id => tr.querySelector(`[data-testid="${id}"]`).textContent.trim();
				return Object.entries(want).every(([k, v]) => cell(k) === v);
			}, [c.pid, want], { timeout: WAIT_MS, polling: 100 });
		} catch {
			const rows = await page.locator('[data-testid="clients"] tbody tr').allTextContents();
			throw new Error(`${what}: no client row for pid ${c.pid} with ${JSON.stringify(want)}; rows: ${JSON.stringify(rows)}`);
		}
	};
	await expectClient(producer, 'a producer holding on', { 'client-pid': String(producer.pid), 'client-role': 'producer', 'client-sent': '2', 'client-state': 'alive' });
	await expectClient(consumer, 'a consumer holding on', { 'client-role': 'consumer', 'client-received': '1', 'client-state': 'alive' });
	await expectValues('three clients attached', { 'clients-attached': 3, depth: 2, enqueued: 10, dequeued: 8, recoveries: 0 });
	victim.proc.kill('SIGKILL');
	await expectClient(victim, 'a client killed while attached', { 'client-role': 'producer', 'client-state': 'recovered' });
	await expectValues('after a client died attached', { 'clients-attached': 2, recoveries: 1, producers: 1, consumers: 1 });
	log(`clients: producer ${producer.pid} and consumer ${consumer.pid} alive, ${victim.pid} killed and recovered`);

	// --- a lease: in flight while held; delivered again when its holder dies --------
	const leaser = await hold(['--recv', '1', '--lease']);
	await expectClient(leaser, 'a consumer holding a lease', { 'client-role': 'consumer', 'client-in-flight': '1', 'client-state': 'alive' });
	await expectValues('one message leased', { 'in-flight': 1, depth: 1 });
	leaser.proc.kill('SIGKILL');
	await expectValues('after the lease holder died', { 'in-flight': 0, depth: 2, recoveries: 2 });
	log(`lease: ${leaser.pid} held one (in flight 1), killed: delivered again (in flight 0, depth 2)`);

	// A few more seconds of history for the charts, then the screenshots.
	await send(5, 200);
	await expectValues('after 5 more messages', { depth: 7, enqueued: 15, 'bytes-enqueued': 2000, 'high-water': 7 });
	await page.waitForTimeout(2500);
	await page.screenshot({ path: join(opt.out, 'dashboard.png'), fullPage: true });
	await page.setViewportSize({ width: 390, height: 844 });
	await page.waitForTimeout(400);
	const overflow = await page.evaluate(() => [document.documentElement.scrollWidth - window.innerWidth,
		...[...document.querySelectorAll('.table-wrap')].map(w => w.scrollWidth - w.clientWidth)]);
	if (overflow[0] > 0)
		throw new Error(`at 390 px wide the page scrolls sideways by ${overflow[0]} px`);
	if (Math.max(...overflow.slice(1)) > 0)
		throw new Error(`at 390 px wide the clients table is cut off by ${Math.max(...overflow.slice(1))} px`);
	await page.screenshot({ path: join(opt.out, 'dashboard-narrow.png'), fullPage: true });
	await page.setViewportSize({ width: 1280, height: 860 });
	log('screenshots: dashboard.png (1280 px), dashboard-narrow.png (390 px)');

	// --- the broker stops: the banner ----------------------------------------------
	brokerDown = true;
	const port = b.port, oldPid = b.pid;
	await stopBroker();
	log(`stopped mqbroker pid ${oldPid}`);
	try {
		await page.waitForFunction(() => {
			const el = document.querySelector('[data-testid="banner"]');
			return el && !el.hidden && el.offsetParent !== null && el.textContent.startsWith('Broker unreachable');
		}, null, { timeout: WAIT_MS, polling: 100 });
	} catch {
		throw new Error(`no banner starting with "Broker unreachable" within ${WAIT_MS / 1000} s of stopping the broker ` +
			`(banner: "${await banner.textContent()}", hidden: ${await banner.isHidden()})`);
	}
	log(`banner: "${(await banner.textContent()).trim()}" (${tolerated} failed polls reported by the browser)`);
	// The last values stay on the page while the broker is away.
	await expectValues('while the broker is down', { depth: 7, enqueued: 15 });
	await page.screenshot({ path: join(opt.out, 'dashboard-unreachable.png') });

	// --- the broker comes back on the same port: recovery without a reload --------
	b = await startBroker(port);
	log(`restarted mqbroker on port ${port}: pid ${b.pid}`);
	try {
		await banner.waitFor({ state: 'hidden', timeout: WAIT_MS });
	} catch {
		throw new Error(`the banner still shows ${WAIT_MS / 1000} s after the broker came back: "${await banner.textContent()}"`);
	}
	await expectValues('after the broker came back', { 'broker-pid': b.pid, depth: 7, enqueued: 15, dequeued: 8, recoveries: 2 });
	brokerDown = false;
	await send(2, 100);
	await recv(4);
	await expectValues('messages after the restart', { depth: 5, enqueued: 17, dequeued: 12, 'bytes-dequeued': 1400 });
	if (await page.evaluate(() => window.__noReload) !== 'still here')
		throw new Error('the page was reloaded to recover');
	log('recovered in place: banner gone, new pid shown, depth 5, enqueued 17, dequeued 12');
	await page.waitForTimeout(1500);
	await page.screenshot({ path: join(opt.out, 'dashboard.png'), fullPage: true });

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
	console.log('PASS web_dashboard: live values, banner on outage, recovery without reload, no console errors');
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
