// The login page: POST /api/login with the token; the session cookie comes
// back (HttpOnly), then the dashboard.
'use strict';
document.getElementById('login-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const error = document.getElementById('login-error');
  error.textContent = '';
  try {
    const r = await fetch('/api/login', {
      method: 'POST',
      headers: {'Content-Type': 'application/json'},
      body: JSON.stringify({token: document.getElementById('token').value}),
      credentials: 'same-origin',
    });
    const body = await r.json();
    if (!r.ok) {
      error.textContent = 'Login refused: ' + (body.error || r.status);
      return;
    }
    location.href = '/';
  } catch (e) {
    error.textContent = 'Login failed: ' + e.message;
  }
});
