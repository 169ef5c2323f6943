// The management API client: every request carries the logged-in user's basic-auth credentials
// (kept in sessionStorage, so they last as long as the tab) and fails with the API's own reason.

const STORAGE_KEY = 'warren.credentials';
const TIMEOUT_MS = 10000;

class ApiError extends Error {
  constructor(status, reason) {
    super(reason);
    this.status = status;
  }
}

function encodeCredentials(user, password) {
  const bytes = new TextEncoder().encode(`${user}:${password}`);
  return btoa(String.fromCharCode(...bytes));
}

// One path segment: the vhost "/" becomes %2F, as the API expects.
export function seg(s) {
  return encodeURIComponent(s);
}

async function request(method, path, body, credentials) {
  // X-Requested-With: a 401 then carries no WWW-Authenticate, so the browser shows no dialog.
  const headers = { Accept: 'application/json', 'X-Requested-With': 'XMLHttpRequest' };
  if (credentials) headers.Authorization = `Basic ${credentials}`;
  const init = { method, headers, cache: 'no-store', signal: AbortSignal.timeout(TIMEOUT_MS) };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(`api/${path}`, init);
  } catch (e) {
    throw new ApiError(0, e.name === 'TimeoutError' ? 'The server did not answer in time' : 'Cannot reach the server');
  }
  const text = await res.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    // a non-JSON body (e.g. a proxy's error page): fall back to the status text below
  }
  if (!res.ok) {
    const reason = (data && (data.reason || data.error)) || res.statusText || 'request failed';
    throw new ApiError(res.status, `${res.status}: ${reason}`);
  }
  return data;
}

export function api(method, path, body) {
  return request(method, path, body, sessionStorage.getItem(STORAGE_KEY));
}

// Checks the credentials with /api/whoami and keeps them only when they work.
export async function login(user, password) {
  const credentials = encodeCredentials(user, password);
  const me = await request('GET', 'whoami', undefined, credentials);
  sessionStorage.setItem(STORAGE_KEY, credentials);
  return me;
}

export function logout() {
  sessionStorage.removeItem(STORAGE_KEY);
}

export function loggedIn() {
  return sessionStorage.getItem(STORAGE_KEY) !== null;
}
