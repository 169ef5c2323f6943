// Polls /api/overview while a user is logged in, on every page, so the overview's rate chart
// has a history (the server keeps only the current rates) even after a visit to other pages.

import { api } from './api.js';

export const INTERVAL_MS = 5000;
const KEEP = 120; // samples: ten minutes at INTERVAL_MS

export const samples = [];
export let latest = null; // the last /api/overview reply
const listeners = new Set();
let timer = null;
let inFlight = null;

async function takeSample() {
  let overview = null;
  let error = null;
  try {
    overview = await api('GET', 'overview');
  } catch (e) {
    error = e;
  }
  if (timer === null) return; // logged out meanwhile
  if (overview) {
    latest = overview;
    const values = {}; // every rate the server reports, by its message_stats key
    for (const [key, details] of Object.entries(overview.message_stats || {})) {
      if (key.endsWith('_details') && typeof details?.rate === 'number') values[key.slice(0, -'_details'.length)] = details.rate;
    }
    samples.push({ t: Date.now(), values });
    if (samples.length > KEEP) samples.shift();
  }
  for (const fn of listeners) fn(overview, error);
}

// Takes a sample now (also on a timer while started); joins one already under way, so two
// samples never come milliseconds apart.
export function sample() {
  inFlight ??= takeSample().finally(() => { inFlight = null; });
  return inFlight;
}

export function start() {
  if (timer !== null) return;
  timer = setInterval(sample, INTERVAL_MS);
  sample();
}

export function stop() {
  clearInterval(timer);
  timer = null;
  samples.length = 0;
  latest = null;
}

// fn(overview, error) after each sample; returns the unsubscribe function.
export function subscribe(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}
