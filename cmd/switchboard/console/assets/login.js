// login.js posts the login form with fetch, so that a wrong token (401 or
// 403) or too many tries (429) show as a message on this page; on success
// the server's redirect leads to the console.
const form = document.getElementById('login');
const error = document.getElementById('login-error');

function fail(text) {
  error.textContent = text;
  error.hidden = false;
}

// Without this script the form posts itself; the server then sends a
// failed login back here with ?failed=1.
if (new URLSearchParams(window.location.search).has('failed')) fail('That token is not the admin token.');

form.addEventListener('submit', async (e) => {
  e.preventDefault();
  error.hidden = true;
  let res;
  try {
    res = await fetch(form.action, {
      method: 'POST',
      body: new URLSearchParams(new FormData(form)),
      credentials: 'same-origin',
    });
  } catch (err) {
    fail('The proxy did not answer: ' + err.message);
    return;
  }
  if (res.status === 429) {
    fail('Too many failed logins: wait a minute and try again.');
  } else if (!res.ok || new URL(res.url).pathname.endsWith('/login')) {
    fail('That token is not the admin token.');
  } else {
    window.location.assign('./');
  }
});
