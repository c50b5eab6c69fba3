// Starts local-aws-sqs (a second SQS implementation, from node_modules at the
// repository's root) on 127.0.0.1:PORT, until it is killed.
//   node local_sqs.js PORT
"use strict";
const path = require("path");
const { createSqsServer } = require(path.join(__dirname, "..", "..", "node_modules", "local-aws-sqs"));

const port = Number(process.argv[2]);
createSqsServer({ port, hostname: "127.0.0.1", emulateQueueCreationLifecycle: false }).then(() => {
  console.log(`local-aws-sqs listening on 127.0.0.1:${port}`);
});
