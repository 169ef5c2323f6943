// #/queues/{vhost}/{name} : one queue's details, publishing to it through the default exchange,
// getting messages from it, purge and delete.

import { api, seg } from './api.js';
import { field, fill, h, kv, section, select } from './dom.js';
import { args, exchangeName, flag, num, rate } from './format.js';
import { flash, onSubmit, report } from './view.js';

const DELIVERY_MODES = [['2', 'Persistent'], ['1', 'Transient']];
const ACK_MODES = [['ack_requeue_true', 'Requeue (messages stay in the queue)'], ['ack_requeue_false', 'Ack (messages are removed)']];

function details(q) {
  const stats = q.message_stats;
  return h('div', { class: 'columns' },
    kv([
      ['Virtual host', q.vhost],
      ['Type', q.type],
      ['State', q.state],
      ['Durable', flag(q.durable)],
      ['Auto-delete', flag(q.auto_delete)],
      ['Exclusive', flag(q.exclusive)],
      ['Arguments', args(q.arguments)],
    ]),
    kv([
      ['Ready', num(q.messages_ready)],
      ['Unacked', num(q.messages_unacknowledged)],
      ['Total', num(q.messages)],
      ['Consumers', num(q.consumers)],
      ['Publish rate', rate(stats, 'publish')],
      ['Deliver / get rate', rate(stats, 'deliver_get')],
      ['Ack rate', rate(stats, 'ack')],
    ], { 'data-testid': 'queue-counts' }));
}

function publishForm(vhost, name, refresh) {
  const form = h('form', { id: 'publish-form', 'data-testid': 'publish-form' },
    h('p', { class: 'muted' }, 'Through the default exchange: the routing key names the queue.'),
    h('div', { class: 'inline' },
      field('Routing key', h('input', { id: 'publish-routing-key', name: 'routing_key', value: name, class: 'wide' })),
      field('Delivery mode', select({ id: 'publish-delivery-mode', name: 'delivery_mode' }, DELIVERY_MODES, '2'))),
    field('Payload', h('textarea', { id: 'publish-payload', name: 'payload', rows: 4 })),
    h('button', { type: 'submit', id: 'publish-submit', 'data-testid': 'publish-submit' }, 'Publish message'));
  return onSubmit(form, async ({ routing_key: routingKey, delivery_mode: mode, payload }) => {
    const reply = await api('POST', `exchanges/${seg(vhost)}/amq.default/publish`, {
      properties: { delivery_mode: Number(mode) },
      routing_key: routingKey,
      payload,
      payload_encoding: 'string',
    });
    refresh();
    return reply.routed ? 'Message published.' : 'Message published, but not routed: no queue has that name.';
  });
}

function message(m, i) {
  return h('article', { class: 'message', 'data-testid': 'message' },
    h('h3', {}, `Message ${i + 1}`),
    kv([
      ['Exchange', exchangeName(m.exchange)],
      ['Routing key', m.routing_key],
      ['Redelivered', flag(m.redelivered)],
      ['Properties', args(m.properties)],
      ['Payload', `${num(m.payload_bytes)} bytes, encoding: ${m.payload_encoding}`],
    ]),
    h('pre', { class: 'payload', 'data-testid': 'message-payload' }, m.payload));
}

function getForm(vhost, name, refresh) {
  const results = h('div', { id: 'get-results', 'data-testid': 'get-results' });
  const form = h('form', { id: 'get-form', 'data-testid': 'get-form' },
    h('div', { class: 'inline' },
      field('Messages', h('input', { id: 'get-count', name: 'count', type: 'number', min: 1, value: 1, required: true })),
      field('Ack mode', select({ id: 'get-ackmode', name: 'ackmode' }, ACK_MODES, 'ack_requeue_true')),
      h('button', { type: 'submit', id: 'get-submit', 'data-testid': 'get-submit' }, 'Get messages')));
  onSubmit(form, async ({ count, ackmode }) => {
    const got = await api('POST', `queues/${seg(vhost)}/${seg(name)}/get`,
      { count: Number(count), ackmode, encoding: 'auto', truncate: 50000 });
    fill(results, got.map(message));
    refresh();
    return got.length === 0 ? 'The queue is empty.' : `Got ${got.length} message${got.length === 1 ? '' : 's'}.`;
  });
  return [form, results];
}

function actions(vhost, name, refresh) {
  const path = `queues/${seg(vhost)}/${seg(name)}`;
  const act = (question, fn) => async () => {
    if (!window.confirm(question)) return;
    try {
      await fn();
    } catch (e) {
      report(e);
    }
  };
  return h('div', { class: 'actions' },
    h('button', { type: 'button', id: 'queue-purge', class: 'secondary', 'data-testid': 'queue-purge',
      onclick: act(`Purge every ready message from ${name}?`, async () => {
        await api('DELETE', `${path}/contents`);
        flash(`Queue ${name} purged.`);
        refresh();
      }) }, 'Purge messages'),
    h('button', { type: 'button', id: 'queue-delete', class: 'danger', 'data-testid': 'queue-delete',
      onclick: act(`Delete the queue ${name} and its messages?`, async () => {
        await api('DELETE', path);
        flash(`Queue ${name} deleted.`);
        window.location.hash = '#/queues';
      }) }, 'Delete queue'));
}

export function show(view, vhost, name) {
  const info = h('div', { id: 'queue-details', 'data-testid': 'queue-details' });
  const refresh = view.every(async () => fill(info, details(await api('GET', `queues/${seg(vhost)}/${seg(name)}`))));
  fill(view.root,
    h('p', { class: 'crumbs' }, h('a', { href: '#/queues' }, 'Queues'), ' › virtual host ', h('code', {}, vhost)),
    h('h1', {}, 'Queue ', h('span', { id: 'queue-name', 'data-testid': 'queue-name' }, name)),
    section('Details', info, actions(vhost, name, refresh)),
    h('div', { class: 'columns' },
      section('Publish message', publishForm(vhost, name, refresh)),
      section('Get messages', ...getForm(vhost, name, refresh))));
}
