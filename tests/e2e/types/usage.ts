// Page code as a TypeScript integration writes it; compiled by types.test.mjs against
// pkg/bootstrap.d.ts, so a wrong or missing declaration fails the build.
import type { ConversationEntry } from "../../../pkg/bootstrap";

window.addEventListener("onEmbeddedMessagingReady", () => {
  const bootstrap = window.embeddedservice_bootstrap;
  bootstrap.prechatAPI.setHiddenPrechatFields({ OrderNumber: "1234" });
  const ok: boolean = bootstrap.userVerificationAPI.setIdentityToken({ identityTokenType: "JWT", identityToken: "x.y.z" });
  void ok;
  bootstrap.utilAPI.launchChat().then(() => bootstrap.utilAPI.sendTextMessage("hello"));
});

window.addEventListener("onEmbeddedMessageSent", (e) => {
  const entry: ConversationEntry = e.detail.conversationEntry;
  const payload = JSON.parse(entry.entryPayload) as { entryType: string };
  console.log(entry.sender.role, payload.entryType);
});

window.addEventListener("onEmbeddedMessagingButtonCreated", (e) => {
  const visibility: "Show" | "Hide" = e.detail.buttonVisibility;
  console.log(visibility);
});

window.addEventListener("onEmbeddedMessagingConversationStarted", (e) => console.log(e.detail.conversationId.length));

function initEmbeddedMessaging(): void {
  try {
    window.embeddedservice_bootstrap.settings.language = "en_US";
    window.embeddedservice_bootstrap.settings.chatButtonPosition = "25px, 30px";
    window.embeddedservice_bootstrap.init("00D000000000001", "Demo_Deployment", "https://example.com/ESW", {
      scrt2URL: "https://messaging.example.com",
    });
  } catch (err) {
    console.error("Error loading Embedded Messaging: ", err);
  }
}
initEmbeddedMessaging();
