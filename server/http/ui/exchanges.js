// #/exchanges : every visible exchange.

import { api } from './api.js';
import { fill, h, section, table } from './dom.js';
import { args, exchangeName, flag } from './format.js';

const COLUMNS = [
  { title: 'Name', cell: (e) => exchangeName(e.name) },
  { title: 'Virtual host', cell: (e) => e.vhost },
  { title: 'Type', cell: (e) => e.type },
  { title: 'Durable', cell: (e) => flag(e.durable) },
  { title: 'Auto-delete', cell: (e) => flag(e.auto_delete) },
  { title: 'Internal', cell: (e) => flag(e.internal) },
  { title: 'Arguments', cell: (e) => args(e.arguments) },
];

export function show(view) {
  const list = h('div', { id: 'exchanges-list' });
  fill(view.root, h('h1', {}, 'Exchanges'), section('All exchanges', list));
  view.every(async () => {
    const exchanges = await api('GET', 'exchanges');
    fill(list, table(COLUMNS, exchanges, {
      id: 'exchanges-table',
      empty: 'No exchanges.',
      rowAttrs: (e) => ({ 'data-testid': 'exchange-row', 'data-vhost': e.vhost, 'data-name': e.name }),
    }));
  });
}
