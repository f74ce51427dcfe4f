/* The pages' one door to the service: every request goes through GisGridApi.request.
 *
 * Credentials live here only (`authHeaders`). Reads work with the login cookie the service
 * sets (HttpOnly, accepted for GET only); writes need the bearer token, which the page gets
 * by logging in (POST /auth/login, from the login page or a page's panel) and keeps in
 * sessionStorage for the tab's life. Vector tiles are fetched with the same credentials.
 */
(function () {
  'use strict';
  const TOKEN_KEY = 'gis-grid-token';
  const USER_KEY = 'gis-grid-user';

  const GisGridApi = {
    base: '/api/v1',

    token() {
      try { return window.sessionStorage.getItem(TOKEN_KEY) || ''; } catch (e) { return ''; }
    },

    user() {
      try { return window.sessionStorage.getItem(USER_KEY) || ''; } catch (e) { return ''; }
    },

    /* The credentials of a request: the only place that builds them. */
    authHeaders() {
      const token = this.token();
      return token ? { Authorization: `Bearer ${token}` } : {};
    },

    /* Log in; resolves to the request's result (the token is kept when it succeeds). */
    async login(username, password) {
      const r = await this.request('POST', '/auth/login', { body: { username, password } });
      if (r.ok) {
        try {
          window.sessionStorage.setItem(TOKEN_KEY, r.data.access_token);
          window.sessionStorage.setItem(USER_KEY, r.data.user.username || username);
        } catch (e) { /* storage disabled: the token lasts as long as the page */ }
      }
      return r;
    },

    /* Forget the tab's token (the server side is revoked by POST /logout). */
    logout() {
      try {
        window.sessionStorage.removeItem(TOKEN_KEY);
        window.sessionStorage.removeItem(USER_KEY);
      } catch (e) { /* storage disabled: nothing kept */ }
    },

    /* Text of an error answer: {detail} (a string or FastAPI's list of problems). */
    errorText(data) {
      if (!data) return '';
      if (typeof data.detail === 'string') return data.detail;
      if (Array.isArray(data.detail)) {
        return data.detail.map((d) => `${(d.loc || []).join('.')}: ${d.msg}`).join('; ');
      }
      return JSON.stringify(data);
    },

    /* Send one request; resolves to {ok, status, data, etag, retryAfter} (never rejects on
     * HTTP errors). */
    async request(method, path, options) {
      const opts = options || {};
      const url = new URL(this.base + path, window.location.origin);
      Object.entries(opts.query || {}).forEach(([key, value]) => {
        if (value === null || value === undefined || value === '' || value === false) return;
        if (Array.isArray(value)) value.forEach((v) => url.searchParams.append(key, v));
        else url.searchParams.set(key, String(value));
      });
      const headers = { Accept: 'application/json, application/geo+json',
                        ...this.authHeaders() };
      if (opts.body !== undefined) headers['Content-Type'] = 'application/json';
      if (opts.ifMatch) headers['If-Match'] = opts.ifMatch;
      let resp;
      try {
        resp = await fetch(url, { method, headers, credentials: 'same-origin', body: opts.body === undefined
          ? undefined : JSON.stringify(opts.body) });
      } catch (err) {
        return { ok: false, status: 0, data: { detail: String(err) }, etag: null,
                 retryAfter: null };
      }
      const text = await resp.text();
      let data = null;
      try { data = text ? JSON.parse(text) : null; } catch (e) { data = { detail: text }; }
      return { ok: resp.ok, status: resp.status, data, etag: resp.headers.get('ETag'),
               retryAfter: resp.headers.get('Retry-After') };
    },

    /* Every feature of a paged GeoJSON list. */
    async all(path, query) {
      const features = [];
      let offset = 0;
      for (;;) {
        const r = await this.request('GET', path, { query: { ...query, limit: 10000, offset } });
        if (!r.ok) throw new Error(`${path}: HTTP ${r.status} ${JSON.stringify(r.data)}`);
        features.push(...r.data.features);
        offset += r.data.numberReturned;
        if (!r.data.numberReturned || offset >= r.data.numberMatched) break;
      }
      return features;
    },
  };
  window.GisGridApi = GisGridApi;
})();
