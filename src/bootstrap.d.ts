// Types of the page-facing API: `window.embeddedservice_bootstrap` and its window events.
// Shipped as pkg/bootstrap.d.ts and served next to bootstrap.min.js.

export {};

/** The commercial `conversationEntry` shape carried by many event details. */
export interface ConversationEntry {
  identifier: string;
  entryType: "Message" | "ParticipantChanged" | "RoutingResult" | "SessionStatusChanged" | string;
  /** A JSON *string*, as in the commercial client; `JSON.parse` it. */
  entryPayload: string;
  sender: { role: "EndUser" | "Agent" | "Chatbot" | "System"; subject: string };
  senderDisplayName: string;
  transcriptedTimestamp: number;
  clientTimestamp?: number;
}

export interface EmbeddedMessagingSettings {
  language?: string;
  hideChatButtonOnLoad?: boolean;
  /** `"<bottom>, <right>"` CSS lengths, e.g. `"25px, 30px"` or `"1%, 1%"`. */
  chatButtonPosition?: string;
  displayMode?: "inline" | "embedded";
  targetElement?: HTMLElement;
  disableInlineAutoLaunch?: boolean;
  enableUserInputForConversationWithBot?: boolean;
  shouldOpenLinksInSameTab?: boolean;
  shouldShowParticipantChgEvntInConvHist?: boolean;
  shouldMinimizeWindowOnNewTab?: boolean;
  restrictSessionOnMessagingChannel?: boolean;
  devMode?: boolean;
  disableStreamingResponses?: boolean;
  imageCompressionOptions?: Record<string, unknown>;
  /** The `snippetConfig` passed to `init`; its keys are also merged into settings. */
  snippetConfig?: SnippetConfig;
  [key: string]: unknown;
}

export interface SnippetConfig {
  /** The messaging endpoint: your server's absolute URL. */
  scrt2URL: string;
  [key: string]: unknown;
}

export interface VisiblePrechatField {
  value: string;
  isEditableByEndUser?: boolean;
}

export interface EmbeddedServiceBootstrap {
  settings: EmbeddedMessagingSettings;
  /**
   * Starts the widget. Throws (and fires `onEmbeddedMessagingInitError`) on a bad argument;
   * a second call is refused with a console error.
   */
  init(orgId: string, deploymentName: string, siteURL: string, snippetConfig: SnippetConfig): void;
  /** Queued until Ready when called earlier; never throws: a bad field is named in the console and skipped. */
  prechatAPI: {
    /** Hidden fields of the deployment: strings within their maxLength, no `javascript:` or `<script>`; sent when the conversation starts (or at once). Calling again overwrites those keys. */
    setHiddenPrechatFields(fields: Record<string, string>): void;
    removeHiddenPrechatFields(names: string[]): void;
    /** Prefills the pre-chat form; `isEditableByEndUser: false` shows the field read-only. */
    setVisiblePrechatFields(fields: Record<string, VisiblePrechatField>): void;
    unsetVisiblePrechatFields(names: string[]): void;
  };
  userVerificationAPI: {
    setIdentityToken(token: { identityTokenType: "JWT"; identityToken: string }): boolean;
    clearSession(endConversation?: boolean): Promise<void>;
  };
  utilAPI: {
    /** Opens or maximizes the window; resolves once open (at once if already open). */
    launchChat(): Promise<string | void>;
    showChatButton(): boolean;
    hideChatButton(): boolean;
    /** Needs an open conversation (`onEmbeddedMessagingConversationOpened`), else rejects with a string. */
    sendTextMessage(text: string): Promise<void>;
    minimizeChat(): Promise<void>;
    /** Removes every element, listener, timer and socket, and deletes this global. */
    removeAllComponents(): Promise<void>;
    setSessionContext(context: Record<string, unknown>): void;
  };
  autoResponseAPI: {
    setAutoResponseParameters(params: Record<string, string>): void;
    removeAutoResponseParameters(names: string[]): void;
  };
}

type Empty = Record<string, never>;
type WithEntry = { conversationEntry: ConversationEntry };

/** Every window event the widget dispatches, with its `detail`. */
export interface EmbeddedMessagingEventDetails {
  onEmbeddedMessagingReady: Empty;
  onEmbeddedMessagingInitSuccess: Empty;
  onEmbeddedMessagingInitError: { code: string; message: string };
  onEmbeddedMessagingButtonCreated: { buttonVisibility: "Show" | "Hide" };
  onEmbeddedMessagingButtonClicked: Empty;
  onEmbeddedMessagingWindowMaximized: Empty;
  onEmbeddedMessagingWindowMinimized: Empty;
  onEmbeddedMessagingWindowClosed: Empty;
  onEmbeddedMessagingConversationStarted: { conversationId: string };
  onEmbeddedMessagingConversationOpened: Empty;
  onEmbeddedMessagingConversationRouted: WithEntry;
  onEmbeddedMessagingConversationParticipantChanged: WithEntry;
  onEmbeddedMessagingConversationClosed: WithEntry;
  onEmbeddedMessagingSessionStatusUpdate: WithEntry;
  onEmbeddedMessagingFirstBotMessageSent: Empty;
  onEmbeddedMessagingPreChatLoaded: { prechatDisplay: "Conversation" | "Session" };
  onEmbeddedMessagingPreChatSubmitted: { prechatDisplay: "Conversation" | "Session" };
  onEmbeddedMessagingIdentityTokenExpired: Empty;
  onEmbeddedMessagingBusinessHoursStarted: Empty;
  onEmbeddedMessagingBusinessHoursEnded: Empty;
  onEmbeddedMessageSent: WithEntry;
  onEmbeddedMessageDelivered: WithEntry;
  onEmbeddedMessageRead: WithEntry;
  onEmbeddedMessageLinkClicked: WithEntry & { link: string };
  onEmbeddedMessagingUnreadCountChanged: { unreadCount: number };
}

/** `CustomEvent`s by name, for `addEventListener` typing. */
export type EmbeddedMessagingWindowEvents = {
  [K in keyof EmbeddedMessagingEventDetails]: CustomEvent<EmbeddedMessagingEventDetails[K]>;
};

declare global {
  interface Window {
    embeddedservice_bootstrap: EmbeddedServiceBootstrap;
  }
  interface WindowEventMap extends EmbeddedMessagingWindowEvents {}
}
