/* The login page: post the form to POST /auth/login, show refusals in place, then go on.
 *
 * Settings come from the page's JSON block (no inline script). `next` was checked by the
 * service; it is checked again here, so only a path on this site is ever followed.
 */
(function () {
  'use strict';
  const cfg = JSON.parse(document.getElementById('gg-login-config').textContent);
  const T = cfg.labels;
  const api = window.GisGridApi;
  api.base = cfg.api;
  const form = document.getElementById('gg-login-form');
  const user = document.getElementById('gg-login-user');
  const password = document.getElementById('gg-login-password');
  const submit = document.getElementById('gg-login-submit');
  const msg = document.getElementById('gg-login-msg');

  function show(text, error) {
    msg.textContent = text;
    msg.className = error ? 'gg-login-msg gg-err' : 'gg-login-msg';
  }

  // A path on this site only: "/x", never "//host", "/\host" or "scheme:".
  function safeNext(value) {
    return typeof value === 'string' && /^\/(?![/\\])[^\s\\]*$/.test(value) ? value : '/map';
  }

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const name = user.value.trim();
    if (!name || !password.value) { show(T.missing, true); return; }
    submit.disabled = true;
    show(T.logging_in, false);
    api.logout();  // an older tab token must not outlive a new login
    const r = await api.login(name, password.value);
    submit.disabled = false;
    if (r.ok) {
      document.body.dataset.loggedIn = r.data.user.username;
      window.location.assign(safeNext(cfg.next));
      return;
    }
    password.value = '';
    document.body.dataset.loginStatus = String(r.status);
    if (r.status === 401) show(T.wrong, true);
    else if (r.status === 429) {
      const minutes = Math.max(1, Math.ceil(Number(r.retryAfter || 60) / 60));
      show(T.locked.replace('{minutes}', String(minutes)), true);
    } else if (r.status === 0 || r.status >= 500) show(T.unavailable, true);
    else show(`${T.failed} (HTTP ${r.status}): ${api.errorText(r.data)}`, true);
    password.focus();
  });
})();
