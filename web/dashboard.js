// dashboard.js - the dashboard's main module: polls GET /status once a second, keeps five minutes of history per queue, shows the view the URL asks for (#/ all queues, #/queues/NAME one queue, else "no such queue"), and a banner while the broker does not answer.

import { num, setText, setNum, clock, duration, rates } from './format.js';
import { renderOverview, drawSparklines, queueHash } from './overview.js';
import { renderQueue, drawQueueCharts, forgetQueue } from './queue.js';

const POLL_MS = 1000;        // one /status a second
const TIMEOUT_MS = 3000;     // a poll that has no answer by then has failed
const HISTORY_S = 300;       // the charts show the last five minutes
const DOWN_AFTER = 2;        // failed polls in a row before the banner shows

const $ = id => document.getElementById(id);

const state = {
	doc: null,            // the last /status document
	route: null,          // what the URL asks for: {view: "overview"} or {view: "queue", name}
	history: new Map(),   // queue name -> [{t, values: {depth, enq, deq, p50, p90, p99}, down}]
	lastSeen: new Map(),  // queue name -> when /status last listed it (s, monotonic)
	failures: 0,          // failed polls in a row
	lastOkWall: null,     // Date of the last good answer
	lastError: '',
	brokerPid: null,
	overviewScroll: 0,    // where the overview was scrolled to when a queue was opened
};

/*
 * parseStatus: the /status text as an object. Counters are 64-bit: one above
 * 2^53 is kept exact as a BigInt (from the number's source text, where the
 * browser gives it to the reviver), so the page never shows a rounded total.
 */
function parseStatus(text) {
	return JSON.parse(text, (key, value, ctx) => {
		if (typeof value === 'number' && Number.isInteger(value) && !Number.isSafeInteger(value) &&
		    ctx && typeof ctx.source === 'string' && /^\d+$/.test(ctx.source))
			return BigInt(ctx.source);
		return value;
	});
}

const nowS = () => performance.now() / 1000;

/* ---- history -------------------------------------------------------------- */

/*
 * record: one sample per queue of DOC (the numbers the charts and sparklines
 * draw: depth, the 1 s rates, the time-in-queue percentiles; null where the
 * queue has none). A failed poll (DOC null) records an outage in every
 * series; a queue missing from DOC, a break in its own. The history of a
 * queue not listed for five minutes is dropped.
 */
function record(doc) {
	const t = nowS();
	const seen = new Set();
	for (const q of doc ? doc.queues : []) {
		const tiq = q.time_in_queue_s || {};
		push(q.name, { t, values: { depth: num(q.depth), enq: num(rates(q, 'enqueue')['1s']), deq: num(rates(q, 'dequeue')['1s']),
			p50: num(tiq.p50), p90: num(tiq.p90), p99: num(tiq.p99) } });
		seen.add(q.name);
		state.lastSeen.set(q.name, t);
	}
	for (const name of [...state.history.keys()]) {
		if (seen.has(name))
			continue;
		if (t - (state.lastSeen.get(name) ?? t) > HISTORY_S + 10) {
			state.history.delete(name);
			state.lastSeen.delete(name);
			continue;
		}
		push(name, doc ? { t, values: {} } : { t, values: {}, down: true });
	}
}

function push(name, sample) {
	let h = state.history.get(name);
	if (!h)
		state.history.set(name, (h = []));
	h.push(sample);
	const cutoff = sample.t - HISTORY_S - 10;
	let drop = 0;
	while (drop < h.length && h[drop].t < cutoff)
		drop++;
	if (drop)
		h.splice(0, drop);
}

const historyOf = name => state.history.get(name) || [];

/* ---- views -------------------------------------------------------------- */

/*
 * parseRoute: what the fragment HASH asks for: "#/queues/orders" (or
 * "#/queues/orders/") the queue "/orders"; "", "#", "#/" and anything else
 * the overview. A fragment that is not valid percent-encoding names the
 * queue as written, which then is "no such queue".
 */
function parseRoute(hash) {
	const m = /^#?\/queues\/([^/]*)\/?$/.exec(hash);
	if (!m)
		return { view: 'overview' };
	let name = m[1];
	try {
		name = decodeURIComponent(name);
	} catch {
		// keep it as written
	}
	return { view: 'queue', name: name.startsWith('/') ? name : `/${name}` };
}

function findQueue(name) {
	return state.doc ? state.doc.queues.find(q => q.name === name) || null : null;
}

/* renderSelect: the queue view's switcher, listing QUEUES, on NAME. */
function renderSelect(queues, name) {
	const sel = $('queue-select');
	const names = queues.map(q => q.name);
	sel.hidden = names.length < 2;
	if (!sel.hidden && [...sel.options].map(o => o.value).join('\n') !== names.join('\n')) {
		sel.textContent = '';
		for (const n of names)
			sel.append(new Option(n, n));
	}
	if (sel.value !== name)
		sel.value = name;
}

/* show: the view the route asks for, filled from the last /status (placeholders before the first). */
function show() {
	const r = state.route, doc = state.doc;
	let view = r.view;
	const q = view === 'queue' ? findQueue(r.name) : null;
	if (view === 'queue' && !q && doc)
		view = 'missing';
	document.body.dataset.view = view;
	$('overview').hidden = view !== 'overview';
	$('detail').hidden = $('crumbs').hidden = view !== 'queue';
	$('missing').hidden = view !== 'missing';
	if (view !== 'queue')
		$('damaged').hidden = true;
	const n = doc ? doc.queues.length : null;
	setText($('subtitle'), n == null ? '—' : `${n} ${n === 1 ? 'queue' : 'queues'}`);

	if (view === 'overview' && doc) {
		renderOverview(doc.queues);
	} else if (view === 'queue') {
		if (q) {
			renderQueue(q);
			renderSelect(doc.queues, q.name);
		} else {
			setText($('queue-name'), r.name);
			document.title = `${r.name} — mqbroker`;
		}
	} else if (view === 'missing') {
		setText($('missing-name'), r.name);
		setText($('missing-known'), n === 0 ? 'It serves no queue at the moment.'
			: `It serves ${n} ${n === 1 ? 'other queue' : 'other queues'}.`);
		document.title = `no such queue ${r.name} — mqbroker`;
	}
	if (state.failures >= DOWN_AFTER)
		document.title = 'unreachable — mqbroker';
	draw();
}

/* draw: the charts or sparklines of the view on screen (none while the tab is hidden). */
function draw() {
	if (document.hidden)
		return;
	const now = nowS();
	if (state.route.view === 'overview')
		drawSparklines(historyOf, now);
	else if (!$('detail').hidden)
		drawQueueCharts(historyOf(state.route.name), now);
}

/* onRoute: the URL's fragment changed (a click, the back button, a bookmark): show what it asks for. */
function onRoute() {
	const prev = state.route;
	const next = parseRoute(location.hash);
	if (!prev || prev.view !== next.view || prev.name !== next.name)
		forgetQueue();
	if (prev && prev.view === 'overview' && next.view !== 'overview')
		state.overviewScroll = window.scrollY;
	state.route = next;
	show();
	if (prev && prev.view !== next.view)
		window.scrollTo(0, next.view === 'overview' ? state.overviewScroll : 0);
}

/* ---- connection state --------------------------------------------------- */

function setState(s) {
	if (document.body.dataset.state !== s)
		document.body.dataset.state = s;
}

function renderBroker(b) {
	setText($('broker-version'), String(b.version ?? '—'));
	setNum($('broker-pid'), b.pid, false);
	setText($('uptime'), typeof b.uptime_s === 'number' ? duration(b.uptime_s) : '—');
	$('uptime').title = `${b.uptime_s} s`;
}

function onStatus(doc) {
	const wasDown = state.failures >= DOWN_AFTER;
	state.failures = 0;
	state.lastOkWall = new Date();
	// An element without a name cannot be shown or linked to.
	doc.queues = doc.queues.filter(q => q && typeof q === 'object' && typeof q.name === 'string');
	state.doc = doc;
	record(doc);

	setState('live');
	const pill = $('conn');
	setText(pill, 'live');
	$('banner').hidden = true;
	if (wasDown || (state.brokerPid !== null && state.brokerPid !== doc.broker.pid))
		pill.title = `reconnected at ${clock(state.lastOkWall)}`;
	state.brokerPid = doc.broker.pid;

	renderBroker(doc.broker);
	show();
	setText($('updated'), `updated ${clock(state.lastOkWall)} · /status polled every second`);
}

/* reason: a failed poll's cause in words. */
function reason(err) {
	if (err.name === 'AbortError')
		return `no answer within ${TIMEOUT_MS / 1000} s`;
	if (err.name === 'SyntaxError')
		return '/status did not answer with JSON';
	if (err instanceof TypeError && !err.httpStatus)
		return 'connection refused or dropped';
	return err.message;
}

function onFailure(err) {
	state.failures++;
	state.lastError = reason(err);
	record(null);
	if (state.failures < DOWN_AFTER) {
		draw();
		return;
	}
	setState('down');
	setText($('conn'), 'unreachable');
	const banner = $('banner');
	let text;
	if (state.lastOkWall) {
		const ago = Math.round((Date.now() - state.lastOkWall) / 1000);
		text = `Broker unreachable since ${clock(state.lastOkWall)} (${duration(ago)} ago): ${state.lastError}. ` +
			'Showing the last values received; retrying every second.';
	} else {
		text = `Broker unreachable: ${state.lastError}. Retrying every second.`;
	}
	setText(banner, text);
	banner.hidden = false;
	document.title = 'unreachable — mqbroker';
	setText($('updated'), state.lastOkWall ? `last answer ${clock(state.lastOkWall)}` : 'no answer from /status yet');
	if (!state.doc)
		setText($('ov-summary'), 'no answer from /status yet');
	draw();
}

/* ---- polling ------------------------------------------------------------ */

async function poll() {
	const started = performance.now();
	const ctl = new AbortController();
	const timer = setTimeout(() => ctl.abort(), TIMEOUT_MS);
	try {
		const resp = await fetch('status', { cache: 'no-store', signal: ctl.signal, headers: { Accept: 'application/json' } });
		if (!resp.ok) {
			const e = new Error(`/status answered HTTP ${resp.status}`);
			e.httpStatus = resp.status;
			throw e;
		}
		const doc = parseStatus(await resp.text());
		if (!doc || typeof doc !== 'object' || !doc.broker || typeof doc.broker !== 'object' || !Array.isArray(doc.queues)) {
			const e = new Error('/status sent a document without "broker" and "queues"');
			e.httpStatus = resp.status;
			throw e;
		}
		onStatus(doc);
	} catch (err) {
		onFailure(err);
	} finally {
		clearTimeout(timer);
		setTimeout(poll, Math.max(50, POLL_MS - (performance.now() - started)));
	}
}

$('queue-select').addEventListener('change', e => {
	location.hash = queueHash(e.target.value);
});
window.addEventListener('hashchange', onRoute);

// Redraw on size changes (layout, zoom, devicePixelRatio) and when the tab shows again.
const ro = new ResizeObserver(() => draw());
for (const c of document.querySelectorAll('.chart, .ov-list'))
	ro.observe(c);
window.addEventListener('resize', draw);
document.addEventListener('visibilitychange', draw);
matchMedia('(prefers-color-scheme: dark)').addEventListener('change', draw);

onRoute();
poll();
