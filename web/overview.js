// overview.js - the dashboard's first view (#/): one card per element of /status's "queues", in the broker's order: state, depth against capacity, rates, oldest message, clients and a depth sparkline; a damaged or refused queue in red with the broker's error. A card links to the queue's own view.

import { drawSparkline } from './chart.js';
import { num, setText, setNum, rate, fillPct, level, rates, oldest } from './format.js';

const $ = id => document.getElementById(id);
const FILTER_FROM = 9; // queues from which the name filter shows

const cards = new Map(); // queue name -> {el, f: {field name -> element}}
let filter = '';

/*
 * queueHash: the URL fragment of the view of queue NAME: "#/queues/orders"
 * for "/orders" (the name without its leading "/", encodeURIComponent'd, so
 * any byte a POSIX name may hold survives the round trip).
 */
export function queueHash(name) {
	return `#/queues/${encodeURIComponent(name.replace(/^\//, ''))}`;
}

/* card: NAME's card, made from the template the first time. */
function card(name) {
	let c = cards.get(name);
	if (c)
		return c;
	const el = $('queue-card-template').content.firstElementChild.cloneNode(true);
	el.dataset.queue = name;
	el.href = queueHash(name);
	const f = {};
	for (const x of el.querySelectorAll('[data-f]'))
		f[x.dataset.f] = x;
	f.name.textContent = name;
	f.name.title = name;
	f.spark.setAttribute('aria-label', `depth of ${name} over the last minutes (up to five)`);
	f.spark.setAttribute('role', 'img');
	c = { el, f };
	cards.set(name, c);
	return c;
}

/* fillCard: card C shows Q (a queue that is not "ok" may lack every number: those show "—"). */
function fillCard(c, q) {
	const f = c.f, st = typeof q.state === 'string' ? q.state : 'ok';
	c.el.dataset.state = st;
	setText(f.state, st);
	f.state.className = `state ${st === 'ok' ? 'ok' : 'bad'}`;
	const err = st === 'ok' ? '' : q.error || `${st}; the broker gave no reason`;
	setText(f.error, err);
	f.error.hidden = !err;
	c.el.title = err ? `${q.name}: ${err}` : `${q.name}: open its view`;

	const depth = num(q.depth), cap = num(q.capacity);
	// A queue the broker could not open has no numbers: its error takes the place of depth, bar and sparkline.
	f.depthLine.hidden = f.bar.hidden = f.spark.hidden = depth == null && st !== 'ok';
	setNum(f.depth, q.depth);
	setNum(f.capacity, q.capacity);
	const known = depth != null && cap != null && cap > 0;
	const frac = known ? Math.min(1, depth / cap) : 0;
	setText(f.fill, known ? fillPct(frac) : '');
	f.barFill.style.transform = `scaleX(${frac})`;
	f.bar.dataset.level = level(frac);
	const inR = rates(q, 'enqueue'), outR = rates(q, 'dequeue');
	setText(f.in, rate(inR['1s']));
	setText(f.out, rate(outR['1s']));
	f.in.nextElementSibling.hidden = f.in.textContent === '—';
	f.out.nextElementSibling.hidden = f.out.textContent === '—';
	f.in.parentElement.title = `enqueued per second, averaged over 1 s / 10 s / 60 s: ${rate(inR['1s'])} / ${rate(inR['10s'])} / ${rate(inR['60s'])}`;
	f.out.parentElement.title = `dequeued per second, averaged over 1 s / 10 s / 60 s: ${rate(outR['1s'])} / ${rate(outR['10s'])} / ${rate(outR['60s'])}`;
	setText(f.oldest, oldest(q));
	setNum(f.clients, q.clients_attached ?? (Array.isArray(q.clients) ? q.clients.filter(x => x.alive).length : null));
}

/* applyFilter: hide the cards whose name does not hold the filter text; say so when none is left. */
function applyFilter(total) {
	const want = filter.trim().toLowerCase();
	let visible = 0;
	for (const [name, c] of cards) {
		c.el.hidden = want !== '' && !name.toLowerCase().includes(want);
		visible += !c.el.hidden;
	}
	const empty = $('ov-empty');
	empty.hidden = visible > 0;
	setText(empty, total === 0 ? 'This broker serves no queue.' : `No queue name contains "${filter.trim()}".`);
}

/* renderOverview: the cards for QUEUES (the "queues" of /status), in their order, and the summary line. */
export function renderOverview(queues) {
	const seen = new Set();
	const list = $('ov-list');
	let pos = 0;
	for (const q of queues) {
		if (typeof q.name !== 'string' || seen.has(q.name))
			continue;
		seen.add(q.name);
		const c = card(q.name);
		fillCard(c, q);
		if (list.children[pos] !== c.el)
			list.insertBefore(c.el, list.children[pos] || null);
		pos++;
	}
	for (const [name, c] of cards)
		if (!seen.has(name)) {
			c.el.remove();
			cards.delete(name);
		}

	const byState = new Map();
	let waiting = 0;
	for (const q of queues) {
		const st = q.state || 'ok';
		byState.set(st, (byState.get(st) || 0) + 1);
		waiting += num(q.depth) ?? 0;
	}
	const n = queues.length;
	const states = [...byState].map(([st, k]) => `${k} ${st}`).join(', ');
	setText($('ov-summary'), n === 0 ? '' : `${n} ${n === 1 ? 'queue' : 'queues'}${byState.size > 1 || !byState.has('ok') ? ` (${states})` : ''} · ${waiting} ${waiting === 1 ? 'message' : 'messages'} waiting`);
	$('ov-filter').hidden = n < FILTER_FROM && filter === '';
	applyFilter(n);
	const bad = n - (byState.get('ok') || 0);
	document.title = `${bad ? `${bad} not ok · ` : ''}${waiting} queued · ${n} ${n === 1 ? 'queue' : 'queues'} — mqbroker`;
}

/* drawSparklines: each visible card's depth over time, from HISTORY(name) (see dashboard.js record()) up to NOW. */
export function drawSparklines(history, now) {
	for (const [name, c] of cards)
		if (!c.el.hidden && !c.f.spark.hidden)
			drawSparkline(c.f.spark, history(name), now, { key: 'depth', color: '--accent', minTop: 4 });
}

$('ov-filter').addEventListener('input', e => {
	filter = e.target.value;
	applyFilter(cards.size);
});
