// How numbers, rates and flags read in tables. A missing value is "–", not 0: a server that keeps
// no message rates sends no `message_stats.*_details`, and "0/s" would claim it measured none.

const DASH = '–';

export function num(n) {
  return typeof n === 'number' ? n.toLocaleString('en-US') : DASH;
}

// The current rate of message_stats[key + '_details'], or undefined when the server gives none.
function rateOf(stats, key) {
  const rate = stats && stats[`${key}_details`] && stats[`${key}_details`].rate;
  return typeof rate === 'number' ? rate : undefined;
}

export function rate(stats, key) {
  const r = rateOf(stats, key);
  if (r === undefined) return DASH;
  return `${r.toLocaleString('en-US', { maximumFractionDigits: r < 10 ? 1 : 0 })}/s`;
}

export function flag(b) {
  return b ? 'yes' : 'no';
}

export function args(table) {
  const entries = Object.entries(table || {});
  return entries.length === 0 ? '' : entries.map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(', ');
}

export function exchangeName(name) {
  return name === '' ? '(AMQP default)' : name;
}
