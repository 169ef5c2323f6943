// The management UI's entry point: the login form, the session (header, sampler) and hash
// routing (#/, #/queues, #/queues/{vhost}/{name}, ...) to the page modules.

import { api, loggedIn, login, logout } from './api.js';
import * as connections from './connections.js';
import { fill, h } from './dom.js';
import * as exchanges from './exchanges.js';
import * as overview from './overview.js';
import * as queue from './queue.js';
import * as queues from './queues.js';
import * as sampler from './sampler.js';
import * as users from './users.js';
import { View } from './view.js';

const ROUTES = [
  { path: /^\/$/, nav: 'overview', show: overview.show },
  { path: /^\/connections$/, nav: 'connections', show: connections.show },
  { path: /^\/exchanges$/, nav: 'exchanges', show: exchanges.show },
  { path: /^\/queues$/, nav: 'queues', show: queues.show },
  { path: /^\/queues\/([^/]+)\/([^/]+)$/, nav: 'queues', show: queue.show },
  { path: /^\/users$/, nav: 'users', show: users.show },
];

const $ = (id) => document.getElementById(id);
let view = null;

function closeView() {
  if (view) view.close();
  view = null;
  $('view').replaceChildren();
}

// The route and its decoded path parameters, or null.
function match(path) {
  for (const route of ROUTES) {
    const m = route.path.exec(path);
    if (!m) continue;
    try {
      return { route, params: m.slice(1).map(decodeURIComponent) };
    } catch {
      return null; // a malformed %-escape
    }
  }
  return null;
}

function navigate() {
  if (!loggedIn()) return;
  closeView();
  const path = window.location.hash.replace(/^#/, '') || '/';
  const found = match(path);
  for (const a of $('nav').querySelectorAll('a')) a.classList.toggle('active', found !== null && a.dataset.route === found.route.nav);
  view = new View($('view'));
  if (found === null) {
    fill(view.root, h('h1', {}, 'Not found'), h('p', {}, 'There is no page at ', h('code', {}, path), '. ',
      h('a', { href: '#/' }, 'Go to the overview.')));
    return;
  }
  found.route.show(view, ...found.params);
}

function showLogin(message) {
  sampler.stop();
  closeView();
  $('nav').hidden = true;
  $('session').hidden = true;
  $('login').hidden = false;
  $('login-error').hidden = !message;
  fill($('login-error'), message || '');
  $('login-username').focus();
}

function showApp(me) {
  $('login').hidden = true;
  $('nav').hidden = false;
  $('session').hidden = false;
  fill($('current-user'), me.name);
  // Users and permissions are administrator-only in the API.
  $('nav-users').hidden = !me.tags.includes('administrator');
  sampler.start();
  navigate();
}

async function onLogin(event) {
  event.preventDefault();
  const button = $('login-submit');
  button.disabled = true;
  try {
    showApp(await login($('login-username').value, $('login-password').value));
    $('login-password').value = '';
  } catch (e) {
    showLogin(e.message);
  } finally {
    button.disabled = false;
  }
}

// After a 401: did the credentials stop working, or was it a missing permission?
async function recheckSession() {
  if (!loggedIn()) return;
  try {
    await api('GET', 'whoami');
  } catch (e) {
    if (e.status !== 401) return;
    logout();
    showLogin(`Logged out: ${e.message}`);
  }
}

async function start() {
  $('login-form').addEventListener('submit', onLogin);
  $('logout').addEventListener('click', () => {
    logout();
    showLogin();
  });
  window.addEventListener('hashchange', navigate);
  window.addEventListener('warren:unauthorised', recheckSession);
  sampler.subscribe((o) => {
    if (o) fill($('node-name'), o.node);
  });
  if (!loggedIn()) {
    showLogin();
    return;
  }
  try {
    showApp(await api('GET', 'whoami'));
  } catch (e) {
    logout();
    showLogin(e.message);
  }
}

start();
