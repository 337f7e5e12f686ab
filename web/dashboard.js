// dashboard.js - polls the broker's GET /status once a second and renders it: numbers as exact text, a depth gauge, two charts, the clients, and a banner while the broker does not answer.

import { TimeChart } from './chart.js';

const POLL_MS = 1000;        // one /status a second
const TIMEOUT_MS = 3000;     // a poll that has no answer by then has failed
const HISTORY_S = 300;       // the charts show the last five minutes
const DOWN_AFTER = 2;        // failed polls in a row before the banner shows

const $ = id => document.getElementById(id);
const byTestId = id => document.querySelector(`[data-testid="${id}"]`);
const rateFmt = new Intl.NumberFormat('en-US', { maximumFractionDigits: 2, useGrouping: false });

const state = {
	doc: null,            // the last /status document
	selected: null,       // the name of the queue shown
	history: new Map(),   // queue name -> [{t, values: {depth, enq, deq}}]
	failures: 0,          // failed polls in a row
	lastOkWall: null,     // Date of the last good answer
	lastError: '',
	brokerPid: null,
	clientsKey: '',
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

/* setText: EL's text, only touched when it changes. */
function setText(el, text) {
	if (el && el.textContent !== text)
		el.textContent = text;
}

/*
 * setNum: EL shows the whole number V exactly ("1234567", never "1.2M"); groups
 * of three digits are set apart by CSS margins on spans (unless GROUP is false,
 * as for pids), so the text content stays the plain digits. data-value holds
 * the same digits.
 */
function setNum(el, v, group = true) {
	if (!el)
		return;
	const s = v == null ? '—' : String(v);
	if (el.dataset.value === s && el.childNodes.length)
		return;
	el.dataset.value = s;
	el.textContent = '';
	if (!group || !/^\d{5,}$/.test(s)) {
		el.textContent = s;
		return;
	}
	const head = s.length % 3 || 3;
	el.append(s.slice(0, head));
	for (let i = head; i < s.length; i += 3) {
		const g = document.createElement('span');
		g.className = 'g';
		g.textContent = s.slice(i, i + 3);
		el.append(g);
	}
}

/* human: a byte count in binary units, for the hint beside the exact number. */
function humanBytes(n) {
	n = Number(n);
	const units = ['KiB', 'MiB', 'GiB', 'TiB', 'PiB', 'EiB'];
	let i = -1;
	do {
		n /= 1024;
		i++;
	} while (n >= 1024 && i < units.length - 1);
	return `${n < 10 ? n.toFixed(2) : n < 100 ? n.toFixed(1) : Math.round(n)} ${units[i]}`;
}

/* duration: seconds as "42s", "3m 07s", "5h 02m 09s" or "12d 4h 05m". */
function duration(s) {
	s = Math.max(0, Math.floor(Number(s) || 0));
	const d = Math.floor(s / 86400), h = Math.floor(s / 3600) % 24, m = Math.floor(s / 60) % 60, sec = s % 60;
	const p = n => String(n).padStart(2, '0');
	if (d)
		return `${d}d ${h}h ${p(m)}m`;
	if (h)
		return `${h}h ${p(m)}m ${p(sec)}s`;
	if (m)
		return `${m}m ${p(sec)}s`;
	return `${sec}s`;
}

/* clock: a Date as local "HH:MM:SS", with the date in front when it is not today. */
function clock(date) {
	const p = n => String(n).padStart(2, '0');
	const t = `${p(date.getHours())}:${p(date.getMinutes())}:${p(date.getSeconds())}`;
	const today = new Date();
	if (date.toDateString() === today.toDateString())
		return t;
	return `${date.getFullYear()}-${p(date.getMonth() + 1)}-${p(date.getDate())} ${t}`;
}

const nowS = () => performance.now() / 1000;

/* ---- charts ------------------------------------------------------------- */

const depthChart = new TimeChart($('depth-chart'), {
	series: [{ key: 'depth', label: 'depth', color: '--accent', fill: true }],
	yTitle: 'messages',
	integer: true,
	minTop: 4,
	format: v => `${v} msgs`,
	refLines: () => {
		const q = currentQueue();
		return q ? [{ value: Number(q.capacity), label: `capacity ${q.capacity}` }] : [];
	},
});
const rateChart = new TimeChart($('rate-chart'), {
	series: [
		{ key: 'enq', label: 'enqueue', color: '--enq', fill: true },
		{ key: 'deq', label: 'dequeue', color: '--deq', fill: false },
	],
	yTitle: 'msgs/s',
	minTop: 4,
	format: v => `${rateFmt.format(v)}/s`,
});

function drawCharts() {
	if (document.hidden)
		return;
	const h = state.history.get(state.selected) || [];
	const now = nowS();
	for (const c of [depthChart, rateChart]) {
		c.setData(h, now);
		c.draw();
	}
}

/* record: one sample per queue of DOC; a failed poll (DOC null) records a gap in every series. */
function record(doc) {
	const t = nowS();
	const seen = new Set();
	for (const q of doc ? doc.queues : []) {
		const r = q.rates || {};
		const rate = (k, fallback) => {
			const v = r[k] && r[k]['1s'];
			return typeof v === 'number' ? v : fallback;
		};
		push(q.name, { t, values: { depth: Number(q.depth), enq: rate('enqueue_per_s', null), deq: rate('dequeue_per_s', null) } });
		seen.add(q.name);
	}
	for (const name of state.history.keys())
		if (!seen.has(name))
			push(name, { t, values: {} });
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

/* ---- rendering ---------------------------------------------------------- */

function currentQueue() {
	const qs = state.doc ? state.doc.queues : [];
	return qs.find(q => q.name === state.selected) || qs[0] || null;
}

function renderQueueSelect(queues) {
	const sel = $('queue-select');
	const names = queues.map(q => q.name);
	sel.hidden = names.length < 2;
	$('queue-name').hidden = names.length >= 2;
	if (sel.hidden || [...sel.options].map(o => o.value).join('\n') === names.join('\n'))
		return;
	sel.textContent = '';
	for (const n of names)
		sel.append(new Option(n, n, false, n === state.selected));
}

function renderBroker(b) {
	setText($('broker-version'), String(b.version ?? '—'));
	setNum($('broker-pid'), b.pid, false);
	setText($('uptime'), duration(b.uptime_s));
	$('uptime').title = `${b.uptime_s} s`;
}

function renderQueue(q) {
	setText($('queue-name'), q.name);
	const depth = Number(q.depth), cap = Number(q.capacity), hw = Number(q.high_water);
	setNum($('depth'), q.depth);
	setNum($('capacity'), q.capacity);
	setText($('capacity-scale'), String(q.capacity));
	const frac = cap > 0 ? Math.min(1, depth / cap) : 0;
	const pct = frac * 100;
	setText($('fill-pct'), `${pct === 0 || pct >= 10 ? Math.round(pct) : pct < 0.1 ? '<0.1' : pct.toFixed(1)}% full`);
	const gauge = $('gauge');
	$('gauge-fill').style.transform = `scaleX(${frac})`;
	$('gauge-hw').style.left = `${cap > 0 ? Math.min(1, hw / cap) * 100 : 0}%`;
	$('gauge-hw').title = `high-water mark: ${q.high_water}`;
	gauge.dataset.level = frac >= 0.9 ? 'full' : frac >= 0.7 ? 'high' : 'ok';
	gauge.setAttribute('aria-valuemax', String(q.capacity));
	gauge.setAttribute('aria-valuenow', String(q.depth));
	gauge.setAttribute('aria-valuetext', `${q.depth} of ${q.capacity} messages`);

	setNum($('high-water'), q.high_water);
	setNum($('max-msg-size'), q.max_msg_size);
	setNum($('producers'), q.producers);
	setNum($('consumers'), q.consumers);
	setNum($('free'), typeof q.capacity === 'bigint' || typeof q.depth === 'bigint'
		? BigInt(q.capacity) - BigInt(q.depth) : Math.max(0, cap - depth));
	setText($('created'), typeof q.created_unix_s === 'number' ? clock(new Date(q.created_unix_s * 1000)) : '—');

	setNum($('enqueued'), q.enqueued_total);
	setNum($('dequeued'), q.dequeued_total);
	setNum($('bytes-enqueued'), q.bytes_enqueued_total);
	setNum($('bytes-dequeued'), q.bytes_dequeued_total);
	for (const [id, v] of [['bytes-enqueued-h', q.bytes_enqueued_total], ['bytes-dequeued-h', q.bytes_dequeued_total]])
		setText($(id), Number(v) < 1024 ? '' : humanBytes(v));
	setNum($('blocked-sends'), q.blocked_sends_total);
	setNum($('blocked-recvs'), q.blocked_recvs_total);
	setNum($('recoveries'), q.recoveries_total);
	setNum($('in-flight'), q.in_flight ?? 0);
	setNum($('acked'), q.acked_total ?? 0);
	setNum($('redelivered'), q.redelivered_total ?? 0);
	const damaged = $('damaged');
	damaged.hidden = q.state !== 'damaged';
	setText(damaged, q.state === 'damaged' ? `Queue ${q.name} is damaged: ${q.error ?? 'see mqctl check'}` : '');
	const clients = Array.isArray(q.clients) ? q.clients : [];
	setNum($('clients-attached'), q.clients_attached ?? clients.filter(c => c.alive).length);

	const r = q.rates || {};
	for (const [dir, key] of [['enqueue', 'enqueue_per_s'], ['dequeue', 'dequeue_per_s']]) {
		const w = r[key] || {};
		for (const win of ['1s', '10s', '60s'])
			setText(byTestId(`${dir}-rate-${win}`), typeof w[win] === 'number' ? rateFmt.format(w[win]) : '—');
		setText($(`${dir}-rate`), typeof w['1s'] === 'number' ? rateFmt.format(w['1s']) : '—');
	}
	renderClients(q, clients);
	document.title = `${q.depth} queued · ${q.name} — mqbroker`;
}

function renderClients(q, clients) {
	const alive = clients.filter(c => c.alive).length, dead = clients.length - alive;
	const plural = (n, w) => `${n} ${w}${n === 1 ? '' : 's'}`;
	setText($('clients-summary'),
		`${plural(Number(q.producers ?? 0), 'producer')}, ${plural(Number(q.consumers ?? 0), 'consumer')}` +
		(dead ? ` · ${dead} recovered` : ''));
	const key = JSON.stringify(clients, (k, v) => (typeof v === 'bigint' ? String(v) : v));
	if (key === state.clientsKey)
		return;
	state.clientsKey = key;
	const sorted = [...clients].sort((a, b) => (b.alive - a.alive) || (a.pid - b.pid));
	const body = $('clients-body');
	const rows = sorted.map(c => {
		const tr = document.createElement('tr');
		tr.className = c.alive ? 'alive' : 'dead';
		tr.dataset.pid = String(c.pid);
		const cell = (content, cls) => {
			const td = document.createElement('td');
			if (cls)
				td.className = cls;
			if (content instanceof Node)
				td.append(content);
			else
				td.textContent = content;
			tr.append(td);
			return td;
		};
		const num = (v, group) => {
			const s = document.createElement('span');
			s.className = 'num';
			setNum(s, v ?? 0, group);
			return s;
		};
		cell(num(c.pid, false)).dataset.testid = 'client-pid';
		const role = document.createElement('span');
		role.className = `role ${c.role}`;
		role.textContent = c.role;
		cell(role).dataset.testid = 'client-role';
		cell(num(c.sent_total), 'r').dataset.testid = 'client-sent';
		cell(num(c.received_total), 'r').dataset.testid = 'client-received';
		cell(num(c.in_flight), 'r wide').dataset.testid = 'client-in-flight';
		cell(Number(c.in_flight) > 0 && typeof c.oldest_lease_age_s === 'number'
			? `${c.oldest_lease_age_s.toFixed(1)} s` : '—', 'r wide').dataset.testid = 'client-oldest-lease';
		cell(num(c.bytes_sent_total), 'r wide');
		cell(num(c.bytes_received_total), 'r wide');
		cell(typeof c.attached_unix_s === 'number' ? clock(new Date(c.attached_unix_s * 1000)) : '—', 'wide');
		const badge = document.createElement('span');
		badge.className = `badge ${c.alive ? 'alive' : 'recovered'}`;
		badge.textContent = c.alive ? 'alive' : 'recovered';
		badge.title = c.alive ? 'attached and running' : 'died attached; the broker cleaned up after it';
		cell(badge).dataset.testid = 'client-state';
		return tr;
	});
	body.replaceChildren(...rows);
	$('clients-empty').hidden = rows.length > 0;
}

/* ---- connection state --------------------------------------------------- */

function setState(s) {
	if (document.body.dataset.state !== s)
		document.body.dataset.state = s;
}

function onStatus(doc) {
	const wasDown = state.failures >= DOWN_AFTER;
	state.failures = 0;
	state.lastOkWall = new Date();
	state.doc = doc;
	const queues = doc.queues;
	if (!queues.some(q => q.name === state.selected))
		state.selected = queues.length ? queues[0].name : null;
	record(doc);

	setState('live');
	const pill = $('conn');
	setText(pill, 'live');
	$('banner').hidden = true;
	if (wasDown || (state.brokerPid !== null && state.brokerPid !== doc.broker.pid))
		pill.title = `reconnected at ${clock(state.lastOkWall)}`;
	state.brokerPid = doc.broker.pid;

	renderBroker(doc.broker || {});
	renderQueueSelect(queues);
	const q = currentQueue();
	if (q)
		renderQueue(q);
	setText($('updated'), `updated ${clock(state.lastOkWall)} · /status polled every second`);
	drawCharts();
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
		drawCharts();
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
	drawCharts();
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
		if (!doc || typeof doc !== 'object' || !doc.broker || !Array.isArray(doc.queues)) {
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
	state.selected = e.target.value;
	state.clientsKey = '';
	const q = currentQueue();
	if (q)
		renderQueue(q);
	drawCharts();
});

// Redraw on size changes (layout, zoom, devicePixelRatio) and when the tab shows again.
const ro = new ResizeObserver(() => drawCharts());
for (const c of document.querySelectorAll('.chart'))
	ro.observe(c);
window.addEventListener('resize', drawCharts);
document.addEventListener('visibilitychange', drawCharts);
matchMedia('(prefers-color-scheme: dark)').addEventListener('change', drawCharts);

drawCharts();
poll();
