// Drives the gateway's demo page in a real headless Chromium (Debian's /usr/bin/chromium) with
// playwright-core: paste a token, press Login, wait for "Registered"; then, when told on stdin,
// press Logout and wait for "Unregistered". Run by tests/gateway_browser.rs.
//   node demo-page.cjs URL TOKEN PROFILE_DIR
"use strict";
const readline = require("readline");
const { launch } = require("./chromium.cjs");

const [url, token, profile] = process.argv.slice(2);

async function main() {
  const context = await launch(profile);
  try {
    const page = context.pages()[0] || (await context.newPage());
    await page.goto(url, { timeout: 15000 });
    await page.fill("#token", token);
    await page.click("#login");
    await page.waitForFunction(
      () => document.getElementById("state").textContent === "Registered", null, { timeout: 15000 });
    console.log("REGISTERED " + (await page.textContent("#aor")));
    const rl = readline.createInterface({ input: process.stdin });
    const line = await new Promise((resolve) => rl.once("line", resolve));
    if (line.trim() !== "logout") throw new Error("unexpected command " + line);
    await page.click("#logout");
    await page.waitForFunction(
      () => document.getElementById("state").textContent === "Unregistered", null, { timeout: 15000 });
    console.log("UNREGISTERED");
    rl.close();
  } finally {
    await context.close();
  }
}

main().then(() => process.exit(0), (e) => { console.error("demo page test failed: " + e); process.exit(1); });
