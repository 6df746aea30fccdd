/**
 * The stand-in for Guacamole's web client at `<base>/`: one self-contained page (no external assets) that walks the
 * same path as the real AngularJS client for `#/client/<id>?token=<t>` (relocateParameters.js): relocate a pre-hash
 * query behind the hash, post the URL parameters with the stored token to /api/tokens, decode the client id, load the
 * connection through the REST API, then open the WebSocket tunnel. It renders a status line instead of a desktop.
 *
 * The status element (`#status`, attribute `data-state` = loading | idle | connecting | connected |
 * disconnected | error) is what browser tests look at; `window.guacTunnel` is the open WebSocket.
 * The script avoids template literals so it can live inside this TypeScript template string.
 */

const script = String.raw`
(function () {
  'use strict';
  var statusEl = document.getElementById('status');
  var nameEl = document.getElementById('connection-name');
  var disconnectEl = document.getElementById('disconnect');

  function show(state, text) {
    statusEl.textContent = text;
    statusEl.setAttribute('data-state', state);
    document.title = text + ' - Guacamole';
  }

  // relocateParameters.js: /guacamole/?token=X#/client/ID becomes /guacamole/#/client/ID?token=X.
  function relocateParameters() {
    if (!location.search || location.search.length < 2) return;
    var hash = location.hash || '#/';
    var separator = hash.indexOf('?') === -1 ? '?' : '&';
    history.replaceState(null, '', location.pathname + hash + separator + location.search.substring(1));
  }

  function parseRoute() {
    var hash = location.hash.replace(/^#/, '');
    var q = hash.indexOf('?');
    var path = q === -1 ? hash : hash.substring(0, q);
    var match = /^\/client\/([^\/]+)$/.exec(path);
    return { clientId: match ? decodeURIComponent(match[1]) : null, params: new URLSearchParams(q === -1 ? '' : hash.substring(q + 1)) };
  }

  // ClientIdentifier.js: base64url without padding (standard base64 still accepted) of id NUL type NUL dataSource.
  function decodeClientId(value) {
    var b64 = value.replace(/-/g, '+').replace(/_/g, '/');
    while (b64.length % 4 !== 0) b64 += '=';
    var parts;
    try { parts = atob(b64).split('\u0000'); } catch (e) { return null; }
    if (parts.length !== 3) return null;
    return { identifier: parts[0], type: parts[1], dataSource: parts[2] };
  }

  function encodeClientId(client) {
    return btoa([client.identifier, client.type, client.dataSource].join('\u0000')).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  }

  function describeClose(code, reason) {
    switch (reason) {
      case '769': return 'Permission denied: not logged in or the session expired';
      case '771': return 'Permission denied: you may not use this connection';
      case '516': return 'Not found: unknown data source or connection';
      case '768': return 'Bad request: the tunnel parameters were rejected';
      default: return 'Connection closed (WebSocket ' + code + (reason ? ', status ' + reason : '') + ')';
    }
  }

  function readError(response) {
    return response.json().then(function (body) {
      return body && typeof body.message === 'string' ? body.message : 'HTTP ' + response.status;
    }, function () { return 'HTTP ' + response.status; });
  }

  function parseInstructions(data) {
    var out = [], elements = [], pos = 0;
    while (pos < data.length) {
      var dot = data.indexOf('.', pos);
      if (dot === -1) break;
      var length = parseInt(data.substring(pos, dot), 10);
      if (isNaN(length)) break;
      var value = data.substring(dot + 1, dot + 1 + length);
      elements.push(value);
      pos = dot + 1 + length;
      var terminator = data.charAt(pos);
      pos++;
      if (terminator === ';') { out.push(elements); elements = []; }
      else if (terminator !== ',') break;
    }
    return out;
  }

  function encode(elements) {
    return elements.map(function (e) { return e.length + '.' + e; }).join(',') + ';';
  }

  async function main() {
    relocateParameters();
    var route = parseRoute();
    var client = null;
    // A share link is #/?key=<share key> (UserCredentials.getLink): log in with it, then go home.
    if (!route.clientId && !route.params.has('key')) { show('idle', 'No connection selected'); return; }
    if (route.clientId) {
      client = decodeClientId(route.clientId);
      if (!client) { show('error', 'Invalid client identifier'); return; }
      if (client.type !== 'c') { show('error', 'Only connections (type c) are supported by this simulator'); return; }
    }

    var base = location.pathname.replace(/[^\/]*$/, '');
    var form = new URLSearchParams();
    var stored = localStorage.getItem('GUAC_AUTH_TOKEN');
    if (stored) { try { form.set('token', JSON.parse(stored)); } catch (e) { /* ignore a corrupt entry */ } }
    route.params.forEach(function (value, key) { form.set(key, value); });
    if (!form.has('token') && !form.has('key')) { show('error', 'Permission denied: not logged in'); return; }

    var auth = await fetch(base + 'api/tokens', {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body: form.toString()
    });
    if (!auth.ok) {
      localStorage.removeItem('GUAC_AUTH_TOKEN');
      show('error', 'Permission denied: ' + (await readError(auth)));
      return;
    }
    var session = await auth.json();
    var token = session.authToken;
    localStorage.setItem('GUAC_AUTH_TOKEN', JSON.stringify(token));

    if (!client) {
      // userPageService.getHomePage: a home holding exactly one connection opens that connection.
      var found = [];
      var sources = session.availableDataSources || [session.dataSource];
      for (var i = 0; i < sources.length; i++) {
        var listed = await fetch(base + 'api/session/data/' + encodeURIComponent(sources[i]) + '/connections', { headers: { 'Guacamole-Token': token } });
        if (!listed.ok) continue;
        var map = await listed.json();
        Object.keys(map).forEach(function (id) { found.push({ identifier: id, type: 'c', dataSource: sources[i] }); });
      }
      if (found.length !== 1) { show('idle', found.length === 0 ? 'No connections available' : 'Choose a connection'); return; }
      client = found[0];
      history.replaceState(null, '', location.pathname + '#/client/' + encodeClientId(client));
    }

    var response = await fetch(base + 'api/session/data/' + encodeURIComponent(client.dataSource) + '/connections/' +
      encodeURIComponent(client.identifier), { headers: { 'Guacamole-Token': token } });
    if (response.status === 403 || response.status === 404) {
      show('error', 'Permission denied: you may not use this connection (' + (await readError(response)) + ')');
      return;
    }
    if (!response.ok) { show('error', 'Error: ' + (await readError(response))); return; }
    var connection = await response.json();
    nameEl.textContent = connection.name;
    show('connecting', 'Connecting to ' + connection.name);

    var ratio = window.devicePixelRatio || 1;
    var query = new URLSearchParams();
    query.set('token', token);
    query.set('GUAC_DATA_SOURCE', client.dataSource);
    query.set('GUAC_ID', client.identifier);
    query.set('GUAC_TYPE', 'c');
    query.set('GUAC_WIDTH', String(Math.floor((window.innerWidth || 1024) * ratio)));
    query.set('GUAC_HEIGHT', String(Math.floor((window.innerHeight || 768) * ratio)));
    query.set('GUAC_DPI', String(Math.floor(ratio * 96)));
    try { query.set('GUAC_TIMEZONE', Intl.DateTimeFormat().resolvedOptions().timeZone); } catch (e) { /* optional */ }
    query.append('GUAC_IMAGE', 'image/png');
    var scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    var ws = new WebSocket(scheme + '//' + location.host + base + 'websocket-tunnel?' + query.toString(), 'guacamole');
    window.guacTunnel = ws;
    var connected = false;
    ws.onmessage = function (event) {
      if (typeof event.data !== 'string') return;
      parseInstructions(event.data).forEach(function (instruction) {
        if (instruction[0] === 'sync' && !connected) {
          connected = true;
          ws.send(encode(['sync', instruction[1] || '0']));
          disconnectEl.hidden = false;
          show('connected', 'Connected to ' + connection.name);
        }
      });
    };
    ws.onclose = function (event) {
      disconnectEl.hidden = true;
      if (connected) show('disconnected', 'Disconnected from ' + connection.name);
      else show('error', describeClose(event.code, event.reason));
    };
    disconnectEl.onclick = function () { ws.send(encode(['disconnect'])); };
    // Guacamole.Keyboard: key presses go to the desktop as key instructions (keysym, pressed).
    document.addEventListener('keydown', function (event) {
      if (connected && ws.readyState === WebSocket.OPEN) ws.send(encode(['key', String(event.keyCode), '1']));
    });
  }

  main().catch(function (error) { show('error', 'Error: ' + (error && error.message ? error.message : String(error))); });
})();
`;

export const CLIENT_PAGE_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Guacamole</title>
<style>
  body { margin: 0; font: 16px/1.5 system-ui, sans-serif; background: #1e1e1e; color: #eee; display: grid; place-items: center; min-height: 100vh; }
  main { text-align: center; }
  h1 { font-size: 1.25rem; font-weight: 600; margin: 0 0 .5rem; }
  #status[data-state="connected"] { color: #8fd18f; }
  #status[data-state="error"] { color: #ff8a80; }
  button { font: inherit; }
</style>
</head>
<body>
<main>
  <h1 id="connection-name">Guacamole (simulator)</h1>
  <p id="status" role="status" aria-live="polite" data-state="loading">Loading…</p>
  <button id="disconnect" type="button" hidden>Disconnect</button>
</main>
<script>${script}</script>
</body>
</html>
`;
