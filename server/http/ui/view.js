// What every page shares: a View that owns the page's refresh timers (stopped when the user
// navigates away, so an old page never draws over a new one), the flash banner, and forms that
// report their outcome in place.

import { api } from './api.js';
import { fill, h, section, setOptions, table } from './dom.js';
import { INTERVAL_MS } from './sampler.js';

const FLASH_MS = 8000;
let flashTimer = null;

export function flash(text, kind = 'info') {
  const el = document.getElementById('flash');
  fill(el, text);
  el.className = kind;
  el.hidden = false;
  clearTimeout(flashTimer);
  flashTimer = setTimeout(() => { el.hidden = true; }, FLASH_MS);
}

// Shows an API failure. A 401 may mean the credentials stopped working (user deleted, password
// changed) or only a missing permission; the app tells them apart (app.js, 'warren:unauthorised').
export function report(error) {
  flash(error.message, 'error');
  checkSession(error);
}

function checkSession(error) {
  if (error.status === 401) window.dispatchEvent(new CustomEvent('warren:unauthorised'));
}

export class View {
  constructor(root) {
    this.root = root;
    this.closed = false;
    this.cleanups = [];
  }

  // Runs fn now and every few seconds until the view closes; returns a function that runs it
  // again at once (after a change). A run still waiting for the server is not started twice.
  every(fn) {
    let running = false;
    const run = async () => {
      if (this.closed || running) return;
      running = true;
      try {
        await fn();
      } catch (e) {
        if (!this.closed) report(e);
      } finally {
        running = false;
      }
    };
    const timer = setInterval(run, INTERVAL_MS);
    this.onClose(() => clearInterval(timer));
    run();
    return run;
  }

  onClose(fn) {
    this.cleanups.push(fn);
  }

  close() {
    this.closed = true;
    for (const fn of this.cleanups) fn();
  }
}

// On submit, runs `action(values)` (values: the form's fields by name) and shows the message it
// returns, or the error, in the form's status line (id: FORM_ID-status).
export function onSubmit(form, action) {
  const status = h('p', { class: 'form-status', id: `${form.id}-status`, 'data-testid': `${form.id}-status`, role: 'status' });
  form.append(status);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const button = form.querySelector('button[type=submit]');
    button.disabled = true;
    status.className = 'form-status';
    fill(status, 'Working…');
    try {
      const values = Object.fromEntries(new FormData(form));
      fill(status, await action(values));
      status.classList.add('ok');
    } catch (e) {
      fill(status, e.message);
      status.classList.add('error');
      checkSession(e);
    } finally {
      button.disabled = false;
    }
  });
  return form;
}

// A <select> of the vhosts the user can see, filled in the background.
export function vhostSelect(attrs) {
  const el = h('select', attrs, h('option', { value: '/' }, '/'));
  api('GET', 'vhosts').then((vhosts) => setOptions(el, vhosts.map((v) => v.name)), report);
  return el;
}

// A page that is one refreshed table of GET /api/PATH: `name` is the page's heading and the id
// prefix of its list and table (NAME-list, NAME-table).
export function showList(view, { name, heading, path, columns, empty, rowAttrs }) {
  const list = h('div', { id: `${name}-list` });
  fill(view.root, h('h1', {}, heading), section(`All ${name}`, list));
  view.every(async () => {
    fill(list, table(columns, await api('GET', path), { id: `${name}-table`, empty, rowAttrs }));
  });
}
