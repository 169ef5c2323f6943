// #/queues : every visible queue with its counts, rates and consumers, and a form to add one.

import { api, seg } from './api.js';
import { field, fill, h, section, table } from './dom.js';
import { flag, num, rate } from './format.js';
import { onSubmit, vhostSelect } from './view.js';

function queueHref(vhost, name) {
  return `#/queues/${seg(vhost)}/${seg(name)}`;
}

const COLUMNS = [
  { title: 'Name', cell: (q) => h('a', { href: queueHref(q.vhost, q.name) }, q.name) },
  { title: 'Virtual host', cell: (q) => q.vhost },
  { title: 'Durable', cell: (q) => flag(q.durable) },
  { title: 'Ready', num: true, cell: (q) => num(q.messages_ready) },
  { title: 'Unacked', num: true, cell: (q) => num(q.messages_unacknowledged) },
  { title: 'Total', num: true, cell: (q) => num(q.messages) },
  { title: 'Consumers', num: true, cell: (q) => num(q.consumers) },
  { title: 'Publish', num: true, cell: (q) => rate(q.message_stats, 'publish') },
  { title: 'Deliver / get', num: true, cell: (q) => rate(q.message_stats, 'deliver_get') },
];

function addQueueForm(refresh) {
  const form = h('form', { id: 'add-queue-form', class: 'inline', 'data-testid': 'add-queue-form' },
    field('Virtual host', vhostSelect({ id: 'add-queue-vhost', name: 'vhost' })),
    field('Name', h('input', { id: 'add-queue-name', name: 'name', required: true, maxlength: 255 })),
    h('label', { class: 'check' },
      h('input', { type: 'checkbox', id: 'add-queue-durable', name: 'durable', checked: true }), 'Durable'),
    h('button', { type: 'submit', id: 'add-queue-submit', 'data-testid': 'add-queue-submit' }, 'Add queue'));
  return onSubmit(form, async ({ vhost, name, durable }) => {
    await api('PUT', `queues/${seg(vhost)}/${seg(name)}`, { durable: durable === 'on', auto_delete: false, arguments: {} });
    form.elements.name.value = '';
    refresh();
    return `Queue ${name} added.`;
  });
}

export function show(view) {
  const list = h('div', { id: 'queues-list' });
  const refresh = view.every(async () => {
    const queues = await api('GET', 'queues');
    fill(list, table(COLUMNS, queues, {
      id: 'queues-table',
      empty: 'No queues yet.',
      rowAttrs: (q) => ({ 'data-testid': 'queue-row', 'data-vhost': q.vhost, 'data-name': q.name }),
    }));
  });
  fill(view.root, h('h1', {}, 'Queues'), section('All queues', list), section('Add a queue', addQueueForm(refresh)));
}
