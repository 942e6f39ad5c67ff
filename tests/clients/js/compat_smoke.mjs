// matrix-js-sdk against SUP for issue 14: its long-poll sync wakes for the user's own new room, /messages tokens
// switch direction without skipping (createMessagesRequest), and getDevices() returns every device field.
// Usage: node compat_smoke.mjs http://127.0.0.1:8008 USER_ID ACCESS_TOKEN DEVICE_ID
// Prints one "OK <check>" line per passed check, or "FAIL <check> <details>" and exits 1.
if (!Promise.withResolvers) { Promise.withResolvers = function () { let resolve, reject; const promise = new Promise((a, b) => { resolve = a; reject = b; }); return { promise, resolve, reject }; }; }
import * as sdk from "matrix-js-sdk";

const [base, userId, accessToken, deviceId] = process.argv.slice(2);
const fail = (what, details) => { console.log("FAIL", what, JSON.stringify(details)); process.exit(1); };
const eq = (a, b) => JSON.stringify(a) === JSON.stringify(b);
const bodies = (chunk) => chunk.filter((e) => e.type === "m.room.message").map((e) => e.content.body);

const c = sdk.createClient({ baseUrl: base, userId, accessToken, deviceId });
c.startClient({ initialSyncLimit: 5 });
await new Promise((res, rej) => {
  const t = setTimeout(() => rej(new Error("first sync timeout")), 20000);
  c.once(sdk.ClientEvent.Sync, () => { clearTimeout(t); res(); });
});
console.log("OK synced");

// item 3: the client is long-polling (30 s); the room it creates must arrive at once
const started = Date.now();
const { room_id: room } = await c.createRoom({ name: "js compat" });
while (!c.getRoom(room)) {
  if (Date.now() - started > 10000) fail("own-room-wake", { waited_ms: Date.now() - started });
  await new Promise((r) => setTimeout(r, 50));
}
console.log("OK own-room-wake", Date.now() - started, "ms");

// item 1: 10 messages; back 5, then forward 3 from that page's end: m6, m7, m8
for (let i = 1; i <= 10; i++) await c.sendTextMessage(room, `m${i}`);
const back = await c.createMessagesRequest(room, null, 5, sdk.Direction.Backward);
if (!eq(bodies(back.chunk), ["m10", "m9", "m8", "m7", "m6"])) fail("messages-back", bodies(back.chunk));
const fwd = await c.createMessagesRequest(room, back.end, 3, sdk.Direction.Forward);
if (!eq(bodies(fwd.chunk), ["m6", "m7", "m8"])) fail("messages-direction-change", bodies(fwd.chunk));
const again = await c.createMessagesRequest(room, fwd.end, 2, sdk.Direction.Backward);
if (!eq(bodies(again.chunk), ["m8", "m7"])) fail("messages-back-again", bodies(again.chunk));
console.log("OK messages-direction-change");

// item 2: every device has the fields clients expect (null when unknown)
const { devices } = await c.getDevices();
for (const d of devices) {
  for (const k of ["device_id", "display_name", "last_seen_ip", "last_seen_ts"]) if (!(k in d)) fail("devices", d);
}
if (!devices.some((d) => d.device_id === deviceId)) fail("devices-own", devices);
console.log("OK devices");
c.stopClient();
process.exit(0);
