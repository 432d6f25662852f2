// Trade the server token for a session cookie, then open the app.
document.querySelector("#login").addEventListener("submit", async (e) => {
  e.preventDefault();
  const res = await fetch("/api/login", {
    method: "POST",
    headers: { "Content-Type": "application/json", "X-Mediagen-CSRF": "1" },
    body: JSON.stringify({ token: document.querySelector("#token").value }),
    credentials: "same-origin",
  });
  if (res.ok) location.href = "/";
  else document.querySelector("#login-error").textContent = "Wrong token.";
});
