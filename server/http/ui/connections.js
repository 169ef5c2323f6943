// #/connections : the AMQP connections the user may see (administrators and monitoring users:
// all of them; others: their own).

import { h } from './dom.js';
import { num } from './format.js';
import { showList } from './view.js';

const COLUMNS = [
  { title: 'Name', cell: (c) => c.name },
  { title: 'User', cell: (c) => c.user },
  { title: 'Virtual host', cell: (c) => c.vhost },
  { title: 'Protocol', cell: (c) => c.protocol },
  { title: 'Channels', num: true, cell: (c) => num(c.channels) },
  { title: 'State', cell: (c) => h('span', { class: `state ${c.state}` }, c.state) },
];

export function show(view) {
  showList(view, {
    name: 'connections',
    heading: 'Connections',
    path: 'connections',
    columns: COLUMNS,
    empty: 'No open connections.',
    rowAttrs: (c) => ({ 'data-testid': 'connection-row', 'data-name': c.name }),
  });
}
