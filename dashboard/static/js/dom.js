// DOM helpers. Every value from the API (user agents, metadata, emails) is attacker-controlled, so
// the page builds elements and sets textContent; it never parses HTML from a string.

// el creates an element: attrs are set as properties except aria-* and data-*, which are attributes;
// children are nodes or strings (which become text).
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('aria-') || k.startsWith('data-') || k === 'role' || k === 'scope') {
      node.setAttribute(k, v === true ? '' : String(v));
    } else if (k === 'class') {
      node.className = v;
    } else {
      node[k] = v;
    }
  }
  append(node, children);
  return node;
}

function append(node, children) {
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

export const $ = (id) => document.getElementById(id);

// replace empties node and fills it with children.
export function replace(node, ...children) {
  node.replaceChildren();
  append(node, children);
}

const timeFmt = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit' });
const dateTimeFmt = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'medium' });

// time renders a <time> with the local clock time, and the full date for hover and assistive tech.
export function time(iso, withDate = false) {
  if (!iso) return el('span', { class: 'muted' }, '—');
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return el('span', {}, String(iso));
  return el('time', { dateTime: d.toISOString(), title: dateTimeFmt.format(d) },
    withDate ? dateTimeFmt.format(d) : timeFmt.format(d));
}

// userHref and ipHref build routes with the parameter escaped, so an ID or IP can never change the route.
export const userHref = (id) => '#/user/' + encodeURIComponent(id);
export const ipHref = (ip) => '#/ip/' + encodeURIComponent(ip);
