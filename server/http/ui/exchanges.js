// #/exchanges : every visible exchange.

import { args, exchangeName, flag } from './format.js';
import { showList } from './view.js';

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
  showList(view, {
    name: 'exchanges',
    heading: 'Exchanges',
    path: 'exchanges',
    columns: COLUMNS,
    empty: 'No exchanges.',
    rowAttrs: (e) => ({ 'data-testid': 'exchange-row', 'data-vhost': e.vhost, 'data-name': e.name }),
  });
}
