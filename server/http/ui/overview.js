// #/ : object and message totals, and the live message-rate chart from the sampler's history.

import { drawRateChart } from './chart.js';
import { fill, h, section } from './dom.js';
import { num, rate } from './format.js';
import * as sampler from './sampler.js';
import { report } from './view.js';

const SERIES = [
  { key: 'publish', label: 'Publish', color: '#2563eb' },
  { key: 'deliver_get', label: 'Deliver / get', color: '#16a34a' },
  { key: 'ack', label: 'Ack', color: '#d97706' },
];
const OBJECTS = [['connections', 'Connections'], ['channels', 'Channels'], ['exchanges', 'Exchanges'],
  ['queues', 'Queues'], ['consumers', 'Consumers']];
const MESSAGES = [['messages_ready', 'Ready'], ['messages_unacknowledged', 'Unacked'], ['messages', 'Total']];

// A style attribute would be inline CSS, which the server's Content-Security-Policy refuses;
// setting the property through the CSSOM is not.
function swatch(color) {
  const el = h('span', { class: 'swatch' });
  el.style.background = color;
  return el;
}

function card(testid, label, value) {
  return h('div', { class: 'card', 'data-testid': testid },
    h('span', { class: 'value' }, value), h('span', { class: 'label' }, label));
}

export function show(view) {
  const canvas = h('canvas', { id: 'rate-chart', 'data-testid': 'rate-chart' });
  const legend = h('ul', { class: 'legend', id: 'rate-legend' });
  const objects = h('div', { class: 'cards', id: 'object-totals', 'data-testid': 'object-totals' });
  const messages = h('div', { class: 'cards', id: 'queue-totals', 'data-testid': 'queue-totals' });
  const about = h('p', { class: 'muted', id: 'overview-about' });
  fill(view.root,
    h('h1', {}, 'Overview'), about,
    section('Message rates', canvas, legend),
    h('div', { class: 'totals' }, section('Totals', objects), section('Queued messages', messages)));

  const draw = () => drawRateChart(canvas, SERIES, sampler.samples);
  const render = (o) => {
    fill(about, `${o.product_name} ${o.product_version} on node ${o.node}, cluster ${o.cluster_name}`);
    const stats = o.message_stats || {};
    fill(legend, SERIES.map(({ key, label, color }) => h('li', { 'data-testid': `rate-${key}` },
      swatch(color), `${label} `, h('strong', {}, rate(stats, key)))));
    const totals = o.object_totals || {};
    fill(objects, OBJECTS.map(([key, label]) => card(`total-${key}`, label, num(totals[key]))));
    const queued = o.queue_totals || {};
    fill(messages, MESSAGES.map(([key, label]) => card(`total-${key}`, label, num(queued[key]))));
    draw();
  };
  if (sampler.latest) render(sampler.latest);
  else draw();
  view.onClose(sampler.subscribe((o, error) => (o ? render(o) : report(error))));
  sampler.sample(); // the last sample may be from before the user's changes on other pages
  window.addEventListener('resize', draw);
  view.onClose(() => window.removeEventListener('resize', draw));
}
