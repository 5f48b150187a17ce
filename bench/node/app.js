// express + express-session + connect-redis with the same routes as bench/redis/apps.py.
// KIND=bare serves express alone; KIND=session adds express-session on connect-redis
// (its documented set-up: resave false, saveUninitialized false).
"use strict";
const express = require("express");

const kind = process.env.KIND || "bare";
const port = Number(process.env.PORT || 3000);
const app = express();
app.disable("x-powered-by");

async function main() {
  if (kind === "session") {
    const session = require("express-session");
    const RedisStore = require("connect-redis").default;
    const { createClient } = require("redis");
    const client = createClient({ url: process.env.REDIS_URL });
    client.on("error", (err) => console.error("redis:", err.message));
    await client.connect();
    app.use(
      session({
        store: new RedisStore({ client }),
        secret: "bench-secret-" + "x".repeat(40), // a bench-only value, never a real secret
        resave: false,
        saveUninitialized: false,
        name: "sid",
        cookie: { maxAge: 30 * 60 * 1000, httpOnly: true, sameSite: "lax" },
      })
    );
  }
  const s = (req) => req.session || {};
  app.get("/read", (req, res) => res.type("text").send(`u=${s(req).user_id || ""}`));
  app.get("/write", (req, res) => {
    const sess = s(req);
    sess.n = (sess.n || 0) + 1;
    res.type("text").send(`n=${sess.n}`);
  });
  app.get("/login", (req, res) => {
    s(req).user_id = "42";
    res.type("text").send("in");
  });
  app.get("/inc", (req, res) => {
    const sess = s(req);
    const k = String(req.query.k || "n");
    sess[k] = (sess[k] || 0) + 1;
    res.type("text").send(`${k}=${sess[k]}`);
  });
  app.get("/dump", (req, res) => {
    const out = {};
    for (const [k, v] of Object.entries(s(req))) if (k !== "cookie") out[k] = v;
    res.json(out);
  });
  app.listen(port, "127.0.0.1");
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
