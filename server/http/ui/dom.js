// DOM building without innerHTML: text from the API only ever becomes text nodes or attribute
// values, so a queue named "<img onerror=...>" is shown, never parsed.

// h('a', {href: '#/', class: 'x', onclick: fn}, 'text', child, [more]) -> Element.
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith('on')) el.addEventListener(key.slice(2), value);
    else el.setAttribute(key, value === true ? '' : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === undefined || child === null || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else el.append(child instanceof Node ? child : String(child));
  }
}

// Replaces el's children.
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

// columns: [{title, cell: row => child, num: bool}]. rowAttrs(row) gives each <tr>'s attributes.
export function table(columns, rows, { id, empty = 'Nothing to show.', rowAttrs = () => ({}) } = {}) {
  if (rows.length === 0) return h('p', { class: 'empty', id, 'data-testid': id }, empty);
  return h('table', { id, 'data-testid': id },
    h('thead', {}, h('tr', {}, columns.map((c) => h('th', { class: c.num ? 'num' : null }, c.title)))),
    h('tbody', {}, rows.map((row) => h('tr', rowAttrs(row),
      columns.map((c) => h('td', { class: c.num ? 'num' : null }, c.cell(row)))))));
}

// A labelled form control; `control` is an <input>, <select> or <textarea>.
export function field(label, control) {
  return h('label', {}, label, control);
}

export function select(attrs, options, selected) {
  return h('select', attrs, options.map(([value, text]) =>
    h('option', { value, selected: value === selected }, text)));
}

// Sets a <select>'s options, keeping the current choice when it is still offered.
export function setOptions(select, values) {
  const chosen = select.value;
  fill(select, values.map((v) => h('option', { value: v }, v)));
  if (values.includes(chosen)) select.value = chosen;
}

// A key/value table: pairs [[label, child], ...].
export function kv(pairs, attrs = {}) {
  return h('table', { class: 'kv', ...attrs }, h('tbody', {}, pairs.map(([k, v]) => h('tr', {}, h('th', {}, k), h('td', {}, v)))));
}

export function section(title, ...children) {
  return h('section', { class: 'panel' }, h('h2', {}, title), children);
}
