// Two matrix-js-sdk clients with Rust crypto: register, sync, create an encrypted room, B decrypts A's message.
// Usage: npm install && node e2ee_smoke.mjs http://127.0.0.1:8008   (the server needs open registration)
if (!Promise.withResolvers) { Promise.withResolvers = function () { let resolve, reject; const promise = new Promise((a, b) => { resolve = a; reject = b; }); return { promise, resolve, reject }; }; }
import "fake-indexeddb/auto";
import * as sdk from "matrix-js-sdk";
const base = process.argv[2];
const rnd = Math.random().toString(36).slice(2, 8);

async function register(name) {
  const url = `${base}/_matrix/client/v3/register`;
  let r = await fetch(url, {method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify({username: name, password: "pw-" + name + "-long"})});
  let j = await r.json();
  r = await fetch(url, {method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify({username: name, password: "pw-" + name + "-long", auth: {type: "m.login.dummy", session: j.session}})});
  return await r.json();
}

async function client(name) {
  const reg = await register(name);
  const c = sdk.createClient({baseUrl: base, userId: reg.user_id, accessToken: reg.access_token, deviceId: reg.device_id});
  await c.initRustCrypto({useIndexedDB: false});
  c.startClient({initialSyncLimit: 10});
  await new Promise((res, rej) => { const t = setTimeout(() => rej(new Error("sync timeout")), 20000); c.once(sdk.ClientEvent.Sync, (s) => { clearTimeout(t); res(s); }); });
  return c;
}

const a = await client("jsa" + rnd);
const b = await client("jsb" + rnd);
console.log("synced both");
const {room_id} = await a.createRoom({invite: [b.getUserId()], preset: "private_chat", initial_state: [{type: "m.room.encryption", state_key: "", content: {algorithm: "m.megolm.v1.aes-sha2"}}]});
console.log("room", room_id);
await new Promise((res) => { const check = () => { if (b.getRoom(room_id)) res(); else setTimeout(check, 100); }; check(); });
await b.joinRoom(room_id);
console.log("b joined");
await new Promise(r => setTimeout(r, 1500));
a.getCrypto().globalBlacklistUnverifiedDevices = false;
const got = new Promise((res, rej) => {
  const t = setTimeout(() => rej(new Error("no decrypted message")), 30000);
  b.on(sdk.MatrixEventEvent.Decrypted, (ev) => { if (ev.getContent().body === "hello from js") { clearTimeout(t); res(ev); } });
  b.on(sdk.RoomEvent.Timeline, (ev) => { if (!ev.isEncrypted() && ev.getContent().body === "hello from js") { clearTimeout(t); res(ev); } });
});
await a.sendTextMessage(room_id, "hello from js");
const ev = await got;
console.log("B decrypted:", ev.getContent().body, "encrypted:", ev.isEncrypted());
a.stopClient(); b.stopClient();
process.exit(0);
