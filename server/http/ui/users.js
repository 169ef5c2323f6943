// #/users : users and their tags, permissions per vhost, topic permissions, and forms to add a
// user and set a user's permissions (administrators only, as in the API).

import { api, seg } from './api.js';
import { field, fill, h, section, setOptions, table } from './dom.js';
import { onSubmit, vhostSelect } from './view.js';

const USER_COLUMNS = [
  { title: 'Name', cell: (u) => u.name },
  { title: 'Tags', cell: (u) => (u.tags.length ? u.tags.join(', ') : 'none') },
];
const PERMISSION_COLUMNS = [
  { title: 'User', cell: (p) => p.user },
  { title: 'Virtual host', cell: (p) => p.vhost },
  { title: 'Configure', cell: (p) => h('code', {}, p.configure) },
  { title: 'Write', cell: (p) => h('code', {}, p.write) },
  { title: 'Read', cell: (p) => h('code', {}, p.read) },
];
const TOPIC_PERMISSION_COLUMNS = [
  { title: 'User', cell: (p) => p.user },
  { title: 'Virtual host', cell: (p) => p.vhost },
  { title: 'Exchange', cell: (p) => p.exchange },
  { title: 'Write', cell: (p) => h('code', {}, p.write) },
  { title: 'Read', cell: (p) => h('code', {}, p.read) },
];

function addUserForm(refresh) {
  const form = h('form', { id: 'add-user-form', class: 'inline', 'data-testid': 'add-user-form' },
    field('Name', h('input', { id: 'add-user-name', name: 'name', required: true, autocomplete: 'off' })),
    field('Password', h('input', { id: 'add-user-password', name: 'password', type: 'password', required: true, autocomplete: 'new-password' })),
    field('Tags', h('input', { id: 'add-user-tags', name: 'tags', placeholder: 'e.g. administrator', title: 'Comma-separated: administrator, monitoring, management' })),
    h('button', { type: 'submit', id: 'add-user-submit', 'data-testid': 'add-user-submit' }, 'Add user'));
  return onSubmit(form, async ({ name, password, tags }) => {
    await api('PUT', `users/${seg(name)}`, { password, tags });
    form.reset();
    refresh();
    return `User ${name} added.`;
  });
}

function permissionsForm(users, refresh) {
  const pattern = (id, name) => h('input', { id, name, value: '.*', class: 'pattern' });
  const form = h('form', { id: 'permissions-form', class: 'inline', 'data-testid': 'permissions-form' },
    field('User', users),
    field('Virtual host', vhostSelect({ id: 'permissions-vhost', name: 'vhost' })),
    field('Configure', pattern('permissions-configure', 'configure')),
    field('Write', pattern('permissions-write', 'write')),
    field('Read', pattern('permissions-read', 'read')),
    h('button', { type: 'submit', id: 'permissions-submit', 'data-testid': 'permissions-submit' }, 'Set permissions'));
  return onSubmit(form, async ({ user, vhost, configure, write, read }) => {
    await api('PUT', `permissions/${seg(vhost)}/${seg(user)}`, { configure, write, read });
    refresh();
    return `Permissions of ${user} in ${vhost} set.`;
  });
}

export function show(view) {
  const userList = h('div', { id: 'users-list' });
  const permissionList = h('div', { id: 'permissions-list' });
  const topicPermissionList = h('div', { id: 'topic-permissions-list' });
  const userChoice = h('select', { id: 'permissions-user', name: 'user', required: true });
  const refresh = view.every(async () => {
    const [users, permissions, topicPermissions] = await Promise.all(
      [api('GET', 'users'), api('GET', 'permissions'), api('GET', 'topic-permissions')]);
    fill(userList, table(USER_COLUMNS, users, {
      id: 'users-table', rowAttrs: (u) => ({ 'data-testid': 'user-row', 'data-name': u.name }),
    }));
    fill(permissionList, table(PERMISSION_COLUMNS, permissions, {
      id: 'permissions-table',
      empty: 'No permissions set.',
      rowAttrs: (p) => ({ 'data-testid': 'permission-row', 'data-user': p.user, 'data-vhost': p.vhost }),
    }));
    fill(topicPermissionList, table(TOPIC_PERMISSION_COLUMNS, topicPermissions, {
      id: 'topic-permissions-table',
      empty: 'No topic permissions set: every routing key is allowed.',
      rowAttrs: (p) => ({ 'data-testid': 'topic-permission-row', 'data-user': p.user, 'data-exchange': p.exchange }),
    }));
    setOptions(userChoice, users.map((u) => u.name));
  });
  fill(view.root, h('h1', {}, 'Users'),
    section('Users', userList, h('h3', {}, 'Add a user'), addUserForm(refresh)),
    section('Permissions', permissionList, h('h3', {}, 'Set permissions'), permissionsForm(userChoice, refresh)),
    section('Topic permissions', topicPermissionList));
}
