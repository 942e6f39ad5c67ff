// matrix-js-sdk's own SlidingSync (simplified sliding sync, MSC4186) driving a MatrixClient against SUP.
// Usage: node sliding_smoke.mjs <baseUrl> <userId> <accessToken> <deviceId> <roomId>
// Prints "ROOM <name> <timeline bodies>" once the room list has the room, "READY", then waits for a message
// whose body is "ping from python" (sent by the test after READY) and prints "GOT ping from python".
import * as sdk from "matrix-js-sdk";
import { SlidingSync } from "matrix-js-sdk/lib/sliding-sync.js";

const [baseUrl, userId, accessToken, deviceId, roomId] = process.argv.slice(2);
const deadline = setTimeout(() => { console.log("TIMEOUT"); process.exit(2); }, 60000);

const client = sdk.createClient({ baseUrl, userId, accessToken, deviceId });
const lists = new Map([["all_rooms", {
    ranges: [[0, 19]],
    timeline_limit: 1,
    required_state: [["m.room.name", ""], ["m.room.avatar", ""], ["m.room.encryption", ""], ["m.room.member", "$LAZY"]],
}]]);
const slidingSync = new SlidingSync(baseUrl, lists, { timeline_limit: 20, required_state: [["*", "*"]] }, client, 5000);

let ready = false;
client.on(sdk.RoomEvent.Timeline, (ev, room) => {
    if (room?.roomId === roomId && ev.getContent()?.body === "ping from python" && ready) {
        console.log("GOT ping from python");
        clearTimeout(deadline);
        client.stopClient();
        process.exit(0);
    }
});

await client.startClient({ slidingSync });
for (let i = 0; i < 200; i++) {
    const room = client.getRoom(roomId);
    if (room && room.name && room.getLiveTimeline().getEvents().length > 0) {
        const bodies = room.getLiveTimeline().getEvents().map((e) => e.getContent()?.body).filter(Boolean);
        console.log(`ROOM ${room.name} ${JSON.stringify(bodies)} count=${slidingSync.getListData("all_rooms")?.joinedCount}`);
        break;
    }
    await new Promise((r) => setTimeout(r, 100));
}
ready = true;
console.log("READY");
