// umbra dashboard: live updates, the admin token and operator actions.
// The pages are complete without this script; it only adds:
//  - refreshing the page's live sections every few seconds (polling the
//    same page, so there is one renderer: the server's templates);
//  - the admin token, entered once, kept in sessionStorage and sent in an
//    Authorization header (never in a URL) on every fetch; with a token,
//    links and forms are followed with fetch so the header goes along;
//  - action buttons (pause, resume, mark as noise, reset, ...) that call
//    the admin API after a confirmation dialog.
(() => {
  'use strict';
  const TOKEN_KEY = 'umbra-admin-token';
  const REFRESH_MS = 5000;
  let token = sessionStorage.getItem(TOKEN_KEY) || '';
  let busy = false;

  const headers = (extra) => {
    const h = Object.assign({ Accept: 'text/html' }, extra || {});
    if (token) h.Authorization = 'Bearer ' + token;
    return h;
  };

  const $ = (sel, root) => (root || document).querySelector(sel);

  function setStatus(text, cls) {
    const el = $('#live-status');
    if (el) { el.textContent = text; el.className = 'live-status ' + (cls || ''); }
  }

  function toast(text, bad) {
    const el = $('#toast');
    if (!el) return;
    el.textContent = text;
    el.className = bad ? 'bad' : 'ok';
    el.hidden = false;
    clearTimeout(toast.timer);
    toast.timer = setTimeout(() => { el.hidden = true; }, 4000);
  }

  async function fetchPage(url) {
    const resp = await fetch(url, { headers: headers(), cache: 'no-store', credentials: 'omit' });
    const doc = new DOMParser().parseFromString(await resp.text(), 'text/html');
    return { status: resp.status, doc };
  }

  // swapDocument shows another page fetched with the token.
  function swapDocument(doc) {
    document.title = doc.title;
    document.body.replaceWith(document.adoptNode(doc.body));
    init();
  }

  // navigate follows a link or a GET form with fetch (needed when the
  // token must go along in a header).
  async function navigate(url, push) {
    try {
      const { doc } = await fetchPage(url);
      swapDocument(doc);
      if (push) history.pushState(null, '', url);
      const hash = new URL(url, location.href).hash;
      const target = hash && document.getElementById(hash.slice(1));
      if (target) target.scrollIntoView(); else if (push) window.scrollTo(0, 0);
    } catch (e) {
      setStatus('offline', 'bad');
    }
  }

  // refresh swaps the live sections of the current page for fresh ones,
  // keeping which <details> the reader opened or closed.
  async function refresh() {
    if (busy || document.hidden || $('dialog[open]') || $('#token-form')) return;
    busy = true;
    try {
      const { status, doc } = await fetchPage(location.href);
      if (status === 401) { swapDocument(doc); return; }
      doc.querySelectorAll('[data-live][id]').forEach((fresh) => {
        const old = document.getElementById(fresh.id);
        if (!old) return;
        const was = Array.from(old.querySelectorAll('details')).map((d) => d.open);
        const now = fresh.querySelectorAll('details');
        if (was.length === now.length) now.forEach((d, i) => { d.open = was[i]; });
        old.replaceWith(document.adoptNode(fresh));
      });
      setStatus('live', 'ok');
    } catch (e) {
      setStatus('offline', 'bad');
    } finally {
      busy = false;
    }
  }

  // confirm opens the confirmation dialog and resolves to true on OK.
  function confirmAction(text, call) {
    const dlg = $('#confirm');
    $('#confirm-text').textContent = text;
    $('#confirm-call').textContent = call;
    return new Promise((resolve) => {
      dlg.addEventListener('close', () => resolve(dlg.returnValue === 'ok'), { once: true });
      dlg.returnValue = '';
      dlg.showModal();
      $('#confirm-ok').focus();
    });
  }

  async function runAction(btn) {
    const method = btn.dataset.method || 'POST';
    const url = btn.dataset.url;
    if (!(await confirmAction(btn.dataset.confirm || 'Are you sure?', method + ' ' + url))) return;
    const opts = { method, headers: headers({ Accept: 'application/json' }), credentials: 'omit' };
    if (btn.dataset.body) {
      opts.body = btn.dataset.body;
      opts.headers['Content-Type'] = 'application/json';
    }
    btn.disabled = true;
    try {
      const resp = await fetch(url, opts);
      let msg = resp.statusText;
      try { const j = await resp.json(); msg = j.message || j.error || msg; } catch (e) { /* not JSON */ }
      if (!resp.ok) { toast(resp.status + ': ' + msg, true); return; }
      toast('Done: ' + btn.textContent.trim());
      // A reset may remove what the page shows (an open sample): go to the list.
      const url2 = method === 'DELETE' && location.pathname === '/ui/diffs' ? '/ui/diffs' : location.href;
      await navigate(url2, url2 !== location.href);
    } catch (e) {
      toast('Failed: ' + e.message, true);
    } finally {
      btn.disabled = false;
    }
  }

  async function signIn(form) {
    token = form.token.value.trim();
    const { status, doc } = await fetchPage(location.href);
    if (status === 401) {
      token = '';
      sessionStorage.removeItem(TOKEN_KEY);
      $('#token-error').hidden = false;
      return;
    }
    sessionStorage.setItem(TOKEN_KEY, token);
    swapDocument(doc);
  }

  function init() {
    const out = $('#signout');
    if (out) out.hidden = !token;
    setStatus(document.hidden ? 'paused' : 'live', 'ok');
    // A stored token signs the login page in at once.
    if ($('#token-form') && token) {
      fetchPage(location.href).then(({ status, doc }) => { if (status !== 401) swapDocument(doc); });
    }
  }

  document.addEventListener('click', (ev) => {
    const btn = ev.target.closest('button.action');
    if (btn) { ev.preventDefault(); runAction(btn); return; }
    if (ev.target.closest('#signout')) {
      sessionStorage.removeItem(TOKEN_KEY);
      token = '';
      navigate(location.href, false);
      return;
    }
    const a = ev.target.closest('a[href]');
    if (!a || !token || ev.ctrlKey || ev.metaKey || ev.shiftKey || a.target) return;
    const url = new URL(a.href, location.href);
    if (url.origin === location.origin && url.pathname.startsWith('/ui/')) {
      ev.preventDefault();
      navigate(url.href, true);
    }
  });

  document.addEventListener('submit', (ev) => {
    const form = ev.target;
    if (form.id === 'token-form') { ev.preventDefault(); signIn(form); return; }
    if (!token || (form.method || 'get').toLowerCase() !== 'get') return;
    ev.preventDefault();
    const url = new URL(form.action, location.href);
    url.search = new URLSearchParams(new FormData(form)).toString();
    navigate(url.href, true);
  });

  window.addEventListener('popstate', () => navigate(location.href, false));
  document.addEventListener('visibilitychange', () => {
    setStatus(document.hidden ? 'paused' : 'live', 'ok');
    if (!document.hidden) refresh();
  });

  init();
  setInterval(refresh, REFRESH_MS);
})();
