/* Who is logged in, and a logout button, on every map page (bottom left).
 *
 * The name comes from GET /auth/me (the login cookie suffices for GET). Logging out posts
 * to /logout, which revokes the session of the cookie and of the tab's token and deletes
 * the cookie; the page then goes to the login page, which returns here after a new login.
 */
(function () {
  'use strict';
  const script = document.currentScript;
  const cfg = JSON.parse(script.dataset.session);
  const T = cfg.labels;
  const api = window.GisGridApi;
  const here = window.location.pathname + window.location.search;

  const box = document.createElement('div');
  box.id = 'gg-session';
  box.innerHTML = '<span id="gg-session-user"></span>' +
    '<button id="gg-logout" type="button"></button>';
  box.querySelector('#gg-logout').textContent = T.logout;
  document.body.appendChild(box);
  ['click', 'dblclick', 'mousedown', 'wheel'].forEach((type) => {
    box.addEventListener(type, (e) => e.stopPropagation());
  });

  fetch(`${cfg.api}/auth/me`, { credentials: 'same-origin', headers: api.authHeaders() })
    .then((r) => (r.ok ? r.json() : null))
    .then((me) => {
      if (!me) return;
      box.querySelector('#gg-session-user').textContent = `${T.user}: ${me.username}`;
      document.body.dataset.user = me.username;
      document.body.dataset.role = me.role;
    })
    .catch(() => {});

  box.querySelector('#gg-logout').addEventListener('click', async () => {
    try {
      await fetch('/logout', { method: 'POST', credentials: 'same-origin',
                               headers: api.authHeaders() });
    } catch (e) { /* offline: the token is dropped below anyway */ }
    api.logout();
    window.location.assign(`/login?logged_out=1&next=${encodeURIComponent(here)}`);
  });
})();
