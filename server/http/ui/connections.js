// #/connections : the AMQP connections the user may see (administrators and monitoring users:
// all of them; others: their own).

import { api } from './api.js';
import { fill, h, section, table } from './dom.js';
import { num } from './format.js';

const COLUMNS = [
  { title: 'Name', cell: (c) => c.name },
  { title: 'User', cell: (c) => c.user },
  { title: 'Virtual host', cell: (c) => c.vhost },
  { title: 'Protocol', cell: (c) => c.protocol },
  { title: 'Channels', num: true, cell: (c) => num(c.channels) },
  { title: 'State', cell: (c) => h('span', { class: `state ${c.state}` }, c.state) },
];

export function show(view) {
  const list = h('div', { id: 'connections-list' });
  fill(view.root, h('h1', {}, 'Connections'), section('All connections', list));
  view.every(async () => {
    const connections = await api('GET', 'connections');
    fill(list, table(COLUMNS, connections, {
      id: 'connections-table',
      empty: 'No open connections.',
      rowAttrs: (c) => ({ 'data-testid': 'connection-row', 'data-name': c.name }),
    }));
  });
}
