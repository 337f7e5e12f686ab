// queue.js - the dashboard's view of one queue (#/queues/NAME): exact numbers, the depth gauge, the depth, rate and time-in-queue charts, and the clients.

import { TimeChart } from './chart.js';
import { num, setText, setNum, rate, rateFmt, humanBytes, seconds, timeUnit, clock, fillPct, level, rates, oldest } from './format.js';

const $ = id => document.getElementById(id);
const byTestId = id => document.querySelector(`[data-testid="${id}"]`);

let shown = null;     // the element of "queues" on screen
let clientsKey = '';  // the clients table as last drawn, to redraw only on change

const depthChart = new TimeChart($('depth-chart'), {
	series: [{ key: 'depth', label: 'depth', color: '--accent', fill: true }],
	yTitle: 'messages',
	integer: true,
	minTop: 4,
	format: v => `${v} msgs`,
	refLines: () => {
		const cap = shown && num(shown.capacity);
		return cap ? [{ value: cap, label: `capacity ${shown.capacity}` }] : [];
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
const tiqChart = new TimeChart($('tiq-chart'), {
	series: [
		{ key: 'p50', label: 'p50', color: '--p50', fill: true },
		{ key: 'p90', label: 'p90', color: '--p90', fill: false },
		// Dashed, so that p90 shows through where the two are equal (few messages).
		{ key: 'p99', label: 'p99', color: '--p99', fill: false, dash: [6, 4] },
	],
	yTitle: 'time in queue',
	minTop: 1e-6,
	format: seconds,
	yUnit: timeUnit,
	emptyText: 'no message measured in the last 60 s',
});

/* drawQueueCharts: the three charts from SAMPLES (the queue's history, see dashboard.js record()) up to NOW. */
export function drawQueueCharts(samples, now) {
	for (const c of [depthChart, rateChart, tiqChart]) {
		c.setData(samples, now);
		c.draw();
	}
}

/* forgetQueue: the next renderQueue() draws everything afresh (another queue is shown). */
export function forgetQueue() {
	shown = null;
	clientsKey = '';
}

/* stateText: the banner for a queue in STATE other than "ok", with the broker's ERROR. */
function stateText(name, st, error) {
	const why = error || 'the broker gave no reason; mqctl check -q NAME tells more';
	if (st === 'refused')
		return `The broker refused queue ${name}: ${why}`;
	return `Queue ${name} is ${st}: ${why}`;
}

/*
 * renderQueue: show Q, one element of /status's "queues". A queue that is
 * not "ok" may come with only its name, state and error: every number it
 * lacks shows "—".
 */
export function renderQueue(q) {
	shown = q;
	const st = q.state || 'ok';
	setText($('queue-name'), q.name);
	const badge = $('queue-state');
	badge.hidden = false;
	badge.className = `state ${st === 'ok' ? 'ok' : 'bad'}`;
	setText(badge, st);
	const damaged = $('damaged');
	damaged.hidden = st === 'ok';
	setText(damaged, st === 'ok' ? '' : stateText(q.name, st, q.error));

	const depth = num(q.depth), cap = num(q.capacity), hw = num(q.high_water);
	setNum($('depth'), q.depth);
	setNum($('capacity'), q.capacity);
	setText($('capacity-scale'), cap == null ? '' : String(q.capacity));
	const known = depth != null && cap != null && cap > 0;
	const frac = known ? Math.min(1, depth / cap) : 0;
	setText($('fill-pct'), known ? fillPct(frac) : '');
	const gauge = $('gauge');
	$('gauge-fill').style.transform = `scaleX(${frac})`;
	$('gauge-hw').hidden = hw == null || !cap;
	$('gauge-hw').style.left = `${cap > 0 && hw != null ? Math.min(1, hw / cap) * 100 : 0}%`;
	$('gauge-hw').title = `high-water mark: ${q.high_water ?? '—'}`;
	gauge.dataset.level = level(frac);
	gauge.setAttribute('aria-valuemax', String(cap ?? 1));
	gauge.setAttribute('aria-valuenow', String(depth ?? 0));
	gauge.setAttribute('aria-valuetext', known ? `${q.depth} of ${q.capacity} messages` : 'unknown');

	setNum($('high-water'), q.high_water);
	setNum($('max-msg-size'), q.max_msg_size);
	setNum($('producers'), q.producers);
	setNum($('consumers'), q.consumers);
	setNum($('free'), cap == null || depth == null ? null
		: typeof q.capacity === 'bigint' || typeof q.depth === 'bigint' ? BigInt(q.capacity) - BigInt(q.depth) : Math.max(0, cap - depth));
	setText($('created'), typeof q.created_unix_s === 'number' ? clock(new Date(q.created_unix_s * 1000)) : '—');

	setNum($('enqueued'), q.enqueued_total);
	setNum($('dequeued'), q.dequeued_total);
	setNum($('bytes-enqueued'), q.bytes_enqueued_total);
	setNum($('bytes-dequeued'), q.bytes_dequeued_total);
	for (const [id, v] of [['bytes-enqueued-h', q.bytes_enqueued_total], ['bytes-dequeued-h', q.bytes_dequeued_total]])
		setText($(id), num(v) == null || num(v) < 1024 ? '' : humanBytes(v));
	setNum($('blocked-sends'), q.blocked_sends_total);
	setNum($('blocked-recvs'), q.blocked_recvs_total);
	setNum($('recoveries'), q.recoveries_total);
	setNum($('in-flight'), q.in_flight);
	setNum($('acked'), q.acked_total);
	setNum($('redelivered'), q.redelivered_total);
	const clients = Array.isArray(q.clients) ? q.clients : [];
	setNum($('clients-attached'), q.clients_attached ?? (Array.isArray(q.clients) ? clients.filter(c => c.alive).length : null));

	for (const dir of ['enqueue', 'dequeue']) {
		const w = rates(q, dir);
		for (const win of ['1s', '10s', '60s'])
			setText(byTestId(`${dir}-rate-${win}`), rate(w[win]));
		setText($(`${dir}-rate`), rate(w['1s']));
	}

	const t = q.time_in_queue_s || {};
	for (const p of ['p50', 'p90', 'p99', 'max'])
		setText($(`tiq-${p}`), seconds(t[p]));
	setNum($('tiq-count'), t.count);
	// The broker's window: up to 60 s, less while it has run for less.
	const win = num(t.window_s);
	for (const el of document.querySelectorAll('.tiq-window'))
		setText(el, win ? `${Math.round(win)} s` : '60 s');
	setText($('oldest-age'), oldest(q));

	renderClients(q, clients);
	document.title = st === 'ok' ? `${q.depth ?? '—'} queued · ${q.name} — mqbroker` : `${st} · ${q.name} — mqbroker`;
}

function renderClients(q, clients) {
	const alive = clients.filter(c => c.alive).length, dead = clients.length - alive;
	const plural = (n, w) => `${n} ${w}${n === 1 ? '' : 's'}`;
	setText($('clients-summary'), num(q.producers) == null ? '' :
		`${plural(num(q.producers), 'producer')}, ${plural(num(q.consumers) ?? 0, 'consumer')}` +
		(dead ? ` · ${dead} recovered` : ''));
	const key = q.name + '\n' + JSON.stringify(clients, (k, v) => (typeof v === 'bigint' ? String(v) : v));
	if (key === clientsKey)
		return;
	clientsKey = key;
	const sorted = [...clients].sort((a, b) => (b.alive - a.alive) || (a.pid - b.pid));
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
		const number = (v, group) => {
			const s = document.createElement('span');
			s.className = 'num';
			setNum(s, v ?? 0, group);
			return s;
		};
		cell(number(c.pid, false)).dataset.testid = 'client-pid';
		const role = document.createElement('span');
		role.className = `role ${c.role}`;
		role.textContent = c.role;
		cell(role).dataset.testid = 'client-role';
		cell(number(c.sent_total), 'r').dataset.testid = 'client-sent';
		cell(number(c.received_total), 'r').dataset.testid = 'client-received';
		cell(number(c.in_flight), 'r wide').dataset.testid = 'client-in-flight';
		cell(Number(c.in_flight) > 0 && typeof c.oldest_lease_age_s === 'number'
			? `${c.oldest_lease_age_s.toFixed(1)} s` : '—', 'r wide').dataset.testid = 'client-oldest-lease';
		cell(number(c.bytes_sent_total), 'r wide');
		cell(number(c.bytes_received_total), 'r wide');
		cell(typeof c.attached_unix_s === 'number' ? clock(new Date(c.attached_unix_s * 1000)) : '—', 'wide');
		const badge = document.createElement('span');
		badge.className = `badge ${c.alive ? 'alive' : 'recovered'}`;
		badge.textContent = c.alive ? 'alive' : 'recovered';
		badge.title = c.alive ? 'attached and running' : 'died attached; the broker cleaned up after it';
		cell(badge).dataset.testid = 'client-state';
		return tr;
	});
	$('clients-body').replaceChildren(...rows);
	const empty = $('clients-empty');
	empty.hidden = rows.length > 0;
	setText(empty, Array.isArray(q.clients) ? 'No client is attached.' : 'The broker did not list this queue\'s clients.');
}
