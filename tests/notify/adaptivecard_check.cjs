// Parse an Adaptive Card with the official `adaptivecards` library and report what it found (dev only).
// stdin: the card JSON. stdout: {"errors": [...], "card": <the card as the library serializes it back>,
// "images": [urls], "actions": [{"type", "title", "url"}]}. Run from pytest (tests/notify/test_cards.py).
"use strict";
// The package's ES module build uses extensionless imports Node cannot resolve; its UMD build loads as is.
const AC = require("adaptivecards/dist/adaptivecards.min.js");

const input = JSON.parse(require("fs").readFileSync(0, "utf8"));
const context = new AC.SerializationContext();
const card = new AC.AdaptiveCard();
card.parse(input, context);
const errors = [];
for (let i = 0; i < context.eventCount; i++) {
  errors.push(context.getEventAt(i).message);
}
for (const event of card.validateProperties().validationEvents) {
  errors.push(event.message);
}
const images = [];
const actions = [];
const visit = (element) => {
  if (element instanceof AC.Image) images.push(element.url);
  if (element.selectAction instanceof AC.OpenUrlAction) actions.push(describe(element.selectAction));
  if (typeof element.getItemCount === "function") {
    for (let i = 0; i < element.getItemCount(); i++) visit(element.getItemAt(i));
  }
};
const describe = (action) => ({ type: action.getJsonTypeName(), title: action.title, url: action.url });
visit(card);
for (let i = 0; i < card.getActionCount(); i++) actions.push(describe(card.getActionAt(i)));
process.stdout.write(JSON.stringify({ errors, version: card.version.toString(), card: card.toJSON(), images, actions }));
