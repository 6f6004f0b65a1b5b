//! The widget's CSS, adopted as constructable stylesheets (no `<style>`, no style attributes).
//!
//! Branding arrives as custom properties set through CSSOM on the root element:
//! `--em-button`, `--em-header`, `--em-accent`, `--em-font`, `--em-bottom`, `--em-right`;
//! the page may override `--eswWidth`, `--eswHeight` and `--eswZIndex`.

/// Light-DOM rules for the launcher. `:where()` keeps specificity at zero so page CSS wins.
pub const DOCUMENT_CSS: &str = r#"
:where(#embeddedMessagingConversationButton){position:fixed;bottom:var(--em-bottom,24px);right:var(--em-right,24px);z-index:var(--eswZIndex,2147483000);box-sizing:border-box;width:60px;height:60px;margin:0;padding:0;border:0;border-radius:50%;display:inline-flex;align-items:center;justify-content:center;background:var(--em-button,#0b5cab);color:#fff;cursor:pointer;box-shadow:0 6px 16px rgba(0,0,0,.18),0 2px 5px rgba(0,0,0,.14);transition:transform .15s ease,box-shadow .15s ease;-webkit-tap-highlight-color:transparent}
:where(#embeddedMessagingConversationButton):hover{transform:translateY(-2px);box-shadow:0 10px 22px rgba(0,0,0,.22),0 3px 6px rgba(0,0,0,.14)}
:where(#embeddedMessagingConversationButton):focus-visible{outline:3px solid var(--em-accent,#0b5cab);outline-offset:3px}
:where(#embeddedMessagingConversationButton)[data-offline]{background:#6b7280}
:where(#embeddedMessagingConversationButton) svg{width:30px;height:30px;fill:currentColor}
:where(#embeddedMessagingConversationButton .embeddedMessagingUnreadBadge){position:absolute;top:-4px;right:-4px;min-width:20px;height:20px;padding:0 6px;border-radius:10px;background:#d92d20;color:#fff;font:700 12px/20px system-ui,sans-serif;text-align:center;box-shadow:0 0 0 2px #fff}
:where(.embedded-messaging-inline,.embedded-messaging-inline>.embedded-messaging-host){display:block;height:100%}
:where(#embeddedMessagingConversationButton[hidden],#embeddedMessagingConversationButton .embeddedMessagingUnreadBadge[hidden]){display:none}
@media (prefers-reduced-motion:reduce){:where(#embeddedMessagingConversationButton){transition:none}}
"#;

/// Shadow-root rules for the window and the minimized bar.
pub const SHADOW_CSS: &str = r#"
:host{all:initial}
[hidden]{display:none!important}
*,*::before,*::after{box-sizing:border-box}
.window,.bar{font:14px/1.45 var(--em-font,system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif);color:#1b1f24;-webkit-font-smoothing:antialiased}
.window{position:fixed;z-index:var(--eswZIndex,2147483000);right:var(--em-right,24px);bottom:var(--em-bottom,24px);width:var(--eswWidth,320px);height:var(--eswHeight,480px);max-height:calc(100vh - 32px);max-width:calc(100vw - 32px);display:flex;flex-direction:column;background:#fff;border-radius:14px;overflow:hidden;box-shadow:0 16px 48px rgba(16,24,40,.22),0 4px 12px rgba(16,24,40,.12);animation:em-in .18s ease-out}
@keyframes em-in{from{opacity:0;transform:translateY(12px) scale(.98)}to{opacity:1;transform:none}}
.header{display:flex;align-items:center;gap:8px;padding:12px 8px 12px 16px;background:var(--em-header,#0b5cab);color:#fff;flex:none}
.heading{flex:1;min-width:0}
.title{margin:0;font-size:15px;font-weight:600;line-height:1.3;white-space:nowrap;overflow:hidden;text-overflow:ellipsis}
.status{margin:1px 0 0;font-size:12px;opacity:.88;white-space:nowrap;overflow:hidden;text-overflow:ellipsis}
.status::before{content:"";display:inline-block;width:7px;height:7px;margin-right:6px;border-radius:50%;background:#fbbf24;vertical-align:1px}
.status[data-live="true"]::before{background:#34d399}
.icon-btn{flex:none;width:32px;height:32px;padding:4px;border:0;border-radius:8px;background:transparent;color:inherit;cursor:pointer;display:inline-flex;align-items:center;justify-content:center}
.icon-btn:hover{background:rgba(255,255,255,.16)}
.end-btn{flex:none;height:28px;padding:0 10px;border:1px solid rgba(255,255,255,.6);border-radius:14px;background:transparent;color:inherit;font:inherit;font-size:12px;cursor:pointer}
.end-btn:hover{background:rgba(255,255,255,.16)}
:host([data-inline]) .window{position:static;width:100%;height:100%;max-width:none;max-height:none;border-radius:0;box-shadow:none;animation:none}
.icon-btn svg,.send svg,.bar svg{width:20px;height:20px;fill:currentColor}
button:focus-visible{outline:3px solid var(--em-accent,#0b5cab);outline-offset:2px}
.header button:focus-visible{outline-color:#fff;outline-offset:0}
.body{flex:1;overflow-y:auto;overscroll-behavior:contain;padding:16px 12px 8px;background:#f5f6f8}
.bubble a{color:inherit;text-decoration:underline;word-break:break-all}
.greeting{margin:0 8px 16px;padding:10px 14px;border-radius:12px;background:#fff;border:1px solid #e4e7ec;color:#3d4652;font-size:13px;text-align:center}
.greeting:empty{display:none}
.messages{list-style:none;margin:0;padding:0;display:flex;flex-direction:column;gap:10px}
.msg{display:flex;flex-direction:column;max-width:82%;align-self:flex-start;align-items:flex-start}
.msg[data-role="EndUser"]{align-self:flex-end;align-items:flex-end}
.sender{font-size:12px;color:#5b6573;margin:0 0 3px 4px;font-weight:500}
.bubble{padding:8px 12px;border-radius:16px 16px 16px 4px;background:#fff;border:1px solid #e4e7ec;white-space:pre-wrap;overflow-wrap:anywhere}
.msg[data-role="EndUser"] .bubble{background:var(--em-button,#0b5cab);border-color:transparent;color:#fff;border-radius:16px 16px 4px 16px}
.msg[data-status="pending"] .bubble{opacity:.62}
.msg[data-status="failed"] .bubble{background:#fff;color:#1b1f24;border:1px solid #d92d20}
.meta{font-size:11px;color:#6b7380;margin:3px 4px 0}
.error{font-size:11px;color:#b42318;margin:2px 4px 0}
.retry{margin:4px 4px 0;padding:3px 12px;border:1px solid #d92d20;border-radius:12px;background:#fff;color:#b42318;font:inherit;font-size:12px;font-weight:600;cursor:pointer}
.retry:hover{background:#fef3f2}
.notice{align-self:center;max-width:100%;align-items:center;flex-direction:row;gap:6px;font-size:12px;color:#5b6573}
.notice .meta{margin:0}
.composer{flex:none;display:flex;align-items:flex-end;gap:8px;padding:10px 12px;border-top:1px solid #e4e7ec;background:#fff}
.input{flex:1;min-height:40px;max-height:120px;field-sizing:content;resize:none;margin:0;padding:9px 14px;border:1px solid #cfd4dc;border-radius:20px;font:inherit;color:inherit;background:#fff;line-height:20px}
.input::placeholder{color:#8a929e}
.input:disabled{background:#eef0f3;cursor:not-allowed}
.input:focus{outline:none;border-color:var(--em-accent,#0b5cab);box-shadow:0 0 0 3px color-mix(in srgb,var(--em-accent,#0b5cab) 22%,transparent)}
.send{flex:none;width:40px;height:40px;border:0;border-radius:50%;background:var(--em-button,#0b5cab);color:#fff;cursor:pointer;display:inline-flex;align-items:center;justify-content:center}
.send:hover{filter:brightness(1.08)}
.bar{position:fixed;z-index:var(--eswZIndex,2147483000);right:var(--em-right,24px);bottom:var(--em-bottom,24px);display:flex;align-items:center;gap:10px;min-width:200px;max-width:calc(100vw - 32px);height:48px;padding:0 18px 0 14px;border:0;border-radius:24px;background:var(--em-header,#0b5cab);color:#fff;font-weight:600;cursor:pointer;box-shadow:0 8px 24px rgba(16,24,40,.2)}
.bar-label{flex:1;text-align:left;white-space:nowrap;overflow:hidden;text-overflow:ellipsis}
.badge{min-width:20px;height:20px;padding:0 6px;border-radius:10px;background:#d92d20;color:#fff;font-size:12px;font-weight:700;line-height:20px;text-align:center}
.ended{flex:none;display:flex;justify-content:center;padding:12px;border-top:1px solid #e4e7ec;background:#fff}
.msg div button{margin:4px 4px 0 0}
.new-conv,.msg div button{border:0;border-radius:20px;padding:10px 18px;background:var(--em-button,#0b5cab);color:#fff;font:inherit;font-weight:600;cursor:pointer}
.new-conv:hover,.msg div button:hover{filter:brightness(1.08)}
.prechat{display:flex;flex-direction:column;gap:12px;margin:0 8px;padding:14px;border-radius:12px;background:#fff;border:1px solid #e4e7ec}
.prechat label{display:block;margin-bottom:4px;font-size:13px;font-weight:600}
.req::after{content:" *";color:#b42318}
.prechat input,.prechat select{width:100%;height:38px;padding:0 12px;border:1px solid #cfd4dc;border-radius:8px;font:inherit;color:inherit;background:#fff}
.prechat input:focus,.prechat select:focus{outline:none;border-color:var(--em-accent,#0b5cab);box-shadow:0 0 0 3px color-mix(in srgb,var(--em-accent,#0b5cab) 22%,transparent)}
.prechat [aria-invalid=true]{border-color:#d92d20}
.prechat [readonly],.prechat :disabled{background:#eef0f3}
.sr-only{position:absolute;width:1px;height:1px;margin:-1px;padding:0;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap;border:0}
@media (max-width:480px),(max-height:520px){.window{inset:0;width:100%;height:100%;max-width:none;max-height:none;border-radius:0}}
@media (prefers-reduced-motion:reduce){.window{animation:none}}
"#;
