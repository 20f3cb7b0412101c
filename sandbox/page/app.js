// The sandbox page. Plain JavaScript, no build step, no network beyond this origin:
//   /v1/...              the creators' REST API, with the demo studio's API key
//   /control/clock       the service's clock (sandbox only): skip ahead
//   /sandbox/telegram/…  the Telegram simulator's control API (act as the artist, read the chat)
//   /sandbox/slack/…     the Slack simulator's control API (act as an agency member, read the channel)
//   /sandbox/changes     a long poll that answers when either simulator changed
// Nothing here reaches the database: every effect goes through the same paths as in production.
"use strict";

// ------------------------------------------------------------------ words

// Every phrase of the page, by key: [English, Chinese].
const PHRASES = {
  sandbox: ["sandbox", "沙盒"],
  tagline: ["Every AI use of a likeness, approved by the person it belongs to.", "肖像的每一次 AI 使用，都要本人点头。"],
  step1: ["Send a request as the studio", "以制片方身份发出请求"],
  step2: ["Decide in the artist's Telegram", "在艺人的 Telegram 里决定"],
  step3: ["The agency's Slack board follows", "经纪公司的 Slack 看板同步更新"],
  serviceTime: ["Service time", "服务时间"],
  realTime: ["real time", "实时"],
  ahead: ["{by} ahead", "已快进 {by}"],
  skipAhead: ["Skip ahead", "快进"],
  skipped: ["The clock moved {by} ahead: due reminders, lapses, expiries and reports run now.", "时钟已快进 {by}：到期的提醒、失效、到期和报告现在执行。"],
  offline: ["The service is not answering. Is make run still running?", "服务没有响应。make run 还在运行吗？"],
  creatorTitle: ["Studio", "制片方"],
  creatorSub: ["{name} · uses the REST API with its key", "{name} · 用 API 密钥调用 REST API"],
  newRequest: ["New likeness request", "新的肖像使用请求"],
  fArtist: ["Artist", "艺人"],
  fTitle: ["Project title", "项目名称"],
  fDescription: ["What exactly will be generated", "具体会生成什么"],
  fDescriptionHint: ["A reasonably specific description, 20–2000 characters.", "合理具体的描述，20–2000 个字符。"],
  fMedia: ["Media", "媒介"],
  fLikeness: ["Likeness", "肖像要素"],
  fTerritory: ["Territory", "地域"],
  fTerritoryHint: ["ISO codes such as CN, HK, US — or worldwide", "ISO 代码，如 CN、HK、US，或 worldwide"],
  fCompensation: ["Compensation", "报酬"],
  compAmount: ["Paid", "有偿"],
  compNone: ["Unpaid", "无偿"],
  compUnset: ["Not stated", "未说明"],
  fStarts: ["Starts", "开始"],
  fEnds: ["Ends", "结束"],
  fDue: ["Decide by", "决定期限"],
  fDueHint: ["Empty: 72 hours after sending", "留空：发送后 72 小时"],
  windowQuick: ["Window:", "期限："],
  w1w: ["1 week", "1 周"],
  w1m: ["1 month", "1 个月"],
  w3m: ["3 months", "3 个月"],
  w1y: ["1 year", "1 年"],
  fAi: ["AI training: the likeness may train or fine-tune a model", "AI 训练：肖像可用于训练或微调模型"],
  fAiWarn: ["Always a separate consent: the artist confirms it with a second tap, and an agency can never give it for them.", "始终是单独的同意：艺人需要再点一次确认，经纪公司不能代为同意。"],
  fSensitive: ["Sensitive content (shown first, in bold)", "敏感内容（在卡片上最先、加粗显示）"],
  fSublicensing: ["Sublicensing to third parties", "允许转授权给第三方"],
  fLabeling: ["AI labelling", "AI 标识方式"],
  fRefs: ["Reference links", "参考链接"],
  fRefsPh: ["One link per line: script, storyboard…", "每行一个链接：剧本、分镜……"],
  send: ["Send request", "发送请求"],
  sending: ["Sending…", "发送中……"],
  example: ["Reset to the example", "恢复示例"],
  fixFields: ["The API refused some fields; see the notes beside them.", "API 拒绝了部分字段，请看字段旁的说明。"],
  sent: ["Sent “{title}” to {artist}.", "已把《{title}》发给 {artist}。"],
  yourRequests: ["Your requests", "我的请求"],
  noRequests: ["Nothing sent yet. The form is filled with an example: press “Send request”.", "还没有请求。表单已填好示例，点“发送请求”即可。"],
  forArtist: ["for {name}", "发给 {name}"],
  decideBy: ["decide by {when}", "{when} 前决定"],
  receipt: ["Download receipt", "下载凭证"],
  reportUse: ["Report a use", "报告一次使用"],
  uploadOutput: ["Send an output for release", "提交生成内容待放行"],
  outputDescription: ["Generated output: {name}", "生成内容：{name}"],
  outputSent: ["Sent to the artist for release.", "已发给艺人等待放行。"],
  useRecorded: ["Use recorded against the grant.", "已记录一次使用。"],
  useViolation: ["Recorded as a violation: {reasons}. The artist, the agency and the studio are told.", "已记为违规：{reasons}。艺人、经纪公司和制作方均已收到通知。"],
  useTitle: ["Report a use of grant", "报告授权的一次使用"],
  close: ["Close", "关闭"],
  uKind: ["What was done", "做了什么"],
  uCount: ["How many", "次数"],
  uMedia: ["Medium", "媒介"],
  uTerritory: ["Where (territory)", "地区"],
  uTerritoryHint: ["ISO codes such as CN, US — or worldwide", "ISO 代码，如 CN、US，或 worldwide"],
  uLikeness: ["Likeness used", "使用的肖像部分"],
  useSend: ["Report this use", "报告这次使用"],
  noMedia: ["— not stated —", "— 未说明 —"],
  needsPlace: ["Publishing and distributing must say the medium and where.", "发布和分发必须说明媒介和地区。"],
  needsLikeness: ["Rendering and training must say which parts of the likeness.", "生成和训练必须说明使用了肖像的哪些部分。"],
  useInside: ["Inside every term: use {id} recorded (201, no violation).", "在所有条款之内：已记录使用 {id}（201，无违规）。"],
  useBroke: ["Violation {id} (409): the use is recorded and the artist, the agency and the studio are told. Terms broken:", "违规 {id}（409）：已记录这次使用，并通知了艺人、经纪公司和制作方。违反的条款："],
  useFix: ["The API refused some fields (422); nothing was recorded.", "API 拒绝了部分字段（422），没有记录任何内容。"],
  kind_render: ["render", "生成"],
  kind_publish: ["publish", "发布"],
  kind_train: ["train a model", "训练模型"],
  kind_fine_tune: ["fine-tune a model", "微调模型"],
  kind_distribute: ["distribute", "分发"],
  kind_other: ["other", "其他"],
  reason_grant_not_active: ["the grant was not active at the time of use", "使用时授权并未生效"],
  reason_grant_paused: ["the artist had paused their consents", "艺人当时已暂停所有授权"],
  reason_ai_training_not_granted: ["AI training was not granted", "未授权 AI 训练"],
  reason_media_not_granted: ["the medium is not among those granted", "该媒介不在授权范围内"],
  reason_territory_not_granted: ["the territory is outside the one granted", "该地区超出授权范围"],
  reason_likeness_not_granted: ["the likeness used goes beyond what was granted", "使用的肖像部分超出授权范围"],
  withdraw: ["Withdraw", "撤回"],
  withdrawn: ["Request withdrawn.", "请求已撤回。"],
  grantWord: ["Grant", "授权"],
  deletionDue: ["Deletion owed since {when}", "自 {when} 起应确认删除"],
  deletionReminded: ["reminder #{count} sent", "已发送第 {count} 次提醒"],
  deletionEscalated: ["raised to the agency", "已通知经纪公司"],
  deletionConfirmed: ["Deletion confirmed {when}", "已于 {when} 确认删除"],
  confirmDeletion: ["Confirm deletion", "确认删除"],
  deletionReceipt: ["Deletion receipt", "删除凭证"],
  deletionStatement: ["The training data, models and renders made with the likeness were erased from every store.", "用该肖像制作的训练数据、模型和渲染结果已从所有存储中删除。"],
  deletionRecorded: ["Deletion confirmed and signed. The artist and the agency are told.", "删除已确认并签名，艺人和经纪公司已收到通知。"],
  deletionReminder: ["Reminder to the studio: confirm the deletion for “{title}”.", "给制作方的提醒：请确认《{title}》的删除。"],
  reasonWord: ["Reason", "理由"],
  aiTag: ["AI training", "AI 训练"],
  redLines: ["red lines: {lines}", "红线：{lines}"],
  noRedLines: ["no red lines", "无红线"],
  policy_artist_only: ["decides alone", "本人决定"],
  policy_agency_may_decide: ["the agency may decide for the artist", "经纪公司可代为决定"],
  policy_both_required: ["artist and agency must both approve", "艺人与经纪公司都须同意"],
  status_pending: ["Pending", "待决定"],
  status_awaiting_cosign: ["Awaiting co-sign", "等待会签"],
  status_approved: ["Approved", "已同意"],
  status_denied: ["Denied", "已拒绝"],
  status_lapsed: ["Lapsed", "已失效"],
  status_withdrawn: ["Withdrawn", "已撤回"],
  grant_scheduled: ["scheduled", "待生效"],
  grant_active: ["active", "生效中"],
  grant_expired: ["expired", "已到期"],
  grant_revoked: ["revoked", "已撤销"],
  grant_paused: ["paused", "已暂停"],
  tgTitle: ["Artist's Telegram", "艺人的 Telegram"],
  tgBot: ["@{username} · bot", "@{username} · 机器人"],
  tgWho: ["You are {name} · {policy} · the bot writes in {language}", "你是 {name} · {policy} · 机器人用{language}回复"],
  lang_zh: ["Chinese", "中文"],
  lang_en: ["English", "英文"],
  tgPlaceholder: ["Message or command, e.g. /grants", "消息或命令，例如 /grants"],
  tgEmpty: ["No messages yet.", "还没有消息。"],
  tgReplyNote: ["The bot asks for a reply here; the sandbox cannot send replies yet, so pick a listed reason instead.", "机器人请你回复这条消息；沙盒暂时不能发送回复，请改选列出的理由。"],
  edited: ["edited", "已编辑"],
  slackSub: ["{agency} · the agency's board", "{agency} · 经纪公司看板"],
  slackActAs: ["Act as", "身份"],
  listed: ["may act", "可操作"],
  notListed: ["not on the list", "不在名单上"],
  slackEmpty: ["Requests for the agency's artists appear here, with their thread.", "旗下艺人的请求会出现在这里，并附带讨论串。"],
  onlyYou: ["Only visible to you", "仅你可见"],
  replies: ["{n} replies", "{n} 条回复"],
  oneReply: ["1 reply", "1 条回复"],
  alsoChannel: ["also sent to the channel", "也发到了频道"],
  slackPlaceholder: ["/likeness pending", "/likeness pending"],
  slackNotCommand: ["Here you type /likeness commands; the board's buttons do the rest.", "这里可以输入 /likeness 命令；其余操作用看板上的按钮。"],
  cancel: ["Cancel", "取消"],
  ok: ["OK", "好"],
  failed: ["That did not work: {why}", "没有成功：{why}"],
  media_film: ["film", "电影"],
  media_series: ["series", "剧集"],
  media_short_video: ["short video", "短视频"],
  media_advertising: ["advertising", "广告"],
  media_game: ["game", "游戏"],
  media_music: ["music", "音乐"],
  media_social: ["social", "社交媒体"],
  media_other: ["other", "其他"],
  likeness_face: ["face", "面部"],
  likeness_voice: ["voice", "声音"],
  likeness_body: ["body", "身体"],
  likeness_name: ["name", "姓名"],
  sensitive_sexual_content: ["sexual content", "性内容"],
  sensitive_political: ["political", "政治"],
  sensitive_religious: ["religious", "宗教"],
  sensitive_endorsement: ["endorsement", "代言"],
  sensitive_physical_alteration: ["physical alteration", "改变身体或面貌"],
  sensitive_real_time_interactive: ["real-time interactive", "实时互动"],
};

// The phrases in one language: 0 English, 1 Chinese.
const phrasesIn = (index) =>
  Object.fromEntries(Object.entries(PHRASES).map(([key, both]) => [key, both[index]]));

const WORDS = { en: phrasesIn(0), zh: phrasesIn(1) };

const EXAMPLES = {
  en: {
    title: "Neon Harbor — episode 3",
    description:
      "A digital double of the artist's face and voice for two dialogue scenes (about 90 seconds), " +
      "generated only from the approved reference photos; no lines beyond the script.",
    labeling: "Visible “AI-generated” label in the credits and a C2PA manifest in every file",
  },
  zh: {
    title: "《霓虹港》第三集",
    description: "用艺人的面部和声音生成数字替身，用于两场对白戏（约 90 秒），只依据已批准的参考照片生成，不增加剧本以外的台词。",
    labeling: "片尾显示“AI 生成”标识，每个文件带 C2PA 元数据",
  },
};

const MEDIA = ["film", "series", "short_video", "advertising", "game", "music", "social", "other"];
const LIKENESS = ["face", "voice", "body", "name"];
const USE_KINDS = ["render", "publish", "train", "fine_tune", "distribute", "other"];
const NEEDS_PLACE = ["publish", "distribute"];
const NEEDS_LIKENESS = ["render", "train", "fine_tune"];
const SENSITIVE = [
  "sexual_content", "political", "religious", "endorsement", "physical_alteration", "real_time_interactive",
];
const TG_COMMANDS = ["/pending", "/grants", "/pause", "/resume", "/report", "/language", "/help"];
const SLACK_COMMANDS = ["/likeness pending", "/likeness report", "/likeness"];
const EMOJI = {
  alarm_clock: "⏰", arrow_forward: "▶️", double_vertical_bar: "⏸️", bar_chart: "📊", bell: "🔔", calendar: "📅", grey_question: "❔", hourglass: "⌛",
  hourglass_flowing_sand: "⏳", large_green_circle: "🟢", leftwards_arrow_with_hook: "↩️", lock: "🔒",
  no_entry: "⛔", no_entry_sign: "🚫", robot_face: "🤖", rotating_light: "🚨", sparkles: "✨", warning: "⚠️",
  white_check_mark: "✅", white_circle: "⚪", x: "❌", wave: "👋", memo: "📝", tada: "🎉", email: "📧",
  clapper: "🎬", performing_arts: "🎭", mag: "🔍", information_source: "ℹ️", heavy_check_mark: "✔️",
  point_right: "👉", busts_in_silhouette: "👥", hourglass_done: "⌛", stopwatch: "⏱️", scroll: "📜",
};

// ------------------------------------------------------------------ state

const S = {
  config: null,
  lang: "en",
  artistKey: null,
  slackUser: null,
  versions: { telegram: -1, slack: -1 },
  now: null,
  offsetSeconds: 0,
  datesTouched: false,
  shownViews: new Set(),
  dismissedViews: new Set(),
  openView: null,
  lastRender: { telegram: "", slack: "", requests: "" },
  flashRequest: null,
  useGrant: null,
  remindersSeen: new Map(), // grant id → deletion reminders the page has shown
};

// ------------------------------------------------------------------ small helpers

const $ = (selector, root = document) => root.querySelector(selector);
const $$ = (selector, root = document) => Array.from(root.querySelectorAll(selector));

function t(key, values = {}) {
  const words = WORDS[S.lang] || WORDS.en;
  const template = key in words ? words[key] : WORDS.en[key] !== undefined ? WORDS.en[key] : key;
  return template.replace(/\{(\w+)\}/g, (_, name) => (name in values ? String(values[name]) : `{${name}}`));
}

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "text") node.textContent = value;
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

const delay = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// A body is sent as JSON, or as it is when it is FormData (multipart, its parts typed by the browser).
async function call(method, path, body, headers = {}) {
  const options = { method, headers: { ...headers } };
  if (body instanceof FormData) {
    options.body = body;
  } else if (body !== undefined) {
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  const response = await fetch(path, options);
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = text;
  }
  return { ok: response.ok, status: response.status, data };
}

function creatorHeaders(extra = {}) {
  return { Authorization: `Bearer ${S.config.creator.api_key}`, ...extra };
}

function newKey() {
  if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
  return `${Date.now()}-${Math.random().toString(16).slice(2)}`;
}

function toast(text, kind = "") {
  const node = el("div", { class: `toast ${kind}`, role: "status" }, text);
  $("#toasts").append(node);
  setTimeout(() => node.remove(), 4200);
}

function whyOf(answer) {
  const data = answer.data;
  if (data && typeof data === "object") {
    if (typeof data.detail === "string") return data.detail;
    if (typeof data.error === "string") return data.error;
    if (typeof data.description === "string") return data.description;
  }
  return typeof data === "string" && data ? data : `HTTP ${answer.status}`;
}

function locale() {
  return S.lang === "zh" ? "zh-CN" : "en-GB";
}

function formatWhen(value, withTime = true) {
  const date = value instanceof Date ? value : new Date(value);
  if (Number.isNaN(date.getTime())) return String(value);
  const options = withTime
    ? { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" }
    : { year: "numeric", month: "short", day: "numeric" };
  return date.toLocaleString(locale(), options);
}

function formatDuration(seconds) {
  let left = Math.round(seconds);
  const days = Math.floor(left / 86400);
  left -= days * 86400;
  const hours = Math.floor(left / 3600);
  left -= hours * 3600;
  const minutes = Math.floor(left / 60);
  const parts = [];
  if (days) parts.push(`${days}d`);
  if (hours) parts.push(`${hours}h`);
  if (minutes && !days) parts.push(`${minutes}m`);
  return parts.join(" ") || "0m";
}

function skipWords(by) {
  const amount = parseInt(by, 10);
  const unit = by.slice(-1);
  if (S.lang === "zh") return `${amount} ${{ h: "小时", d: "天" }[unit] || unit}`;
  return `${amount} ${{ h: amount === 1 ? "hour" : "hours", d: amount === 1 ? "day" : "days" }[unit] || unit}`;
}

// Local "YYYY-MM-DDTHH:MM" for a datetime-local input, and back to an ISO instant.
function toLocalInput(date) {
  const pad = (n) => String(n).padStart(2, "0");
  return (
    `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}` +
    `T${pad(date.getHours())}:${pad(date.getMinutes())}`
  );
}

function fromLocalInput(value) {
  if (!value) return undefined;
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? value : date.toISOString();
}

function serviceNow() {
  return S.now ? new Date(S.now) : new Date();
}

function artistById(id) {
  return S.config.artists.find((a) => a.id === id);
}

function currentArtist() {
  return S.config.artists.find((a) => a.key === S.artistKey) || S.config.artists[0];
}

// ------------------------------------------------------------------ language

function applyLanguage() {
  document.documentElement.lang = S.lang === "zh" ? "zh-Hans" : "en";
  for (const node of $$("[data-i18n]")) node.textContent = t(node.dataset.i18n);
  for (const node of $$("[data-i18n-placeholder]")) node.placeholder = t(node.dataset.i18nPlaceholder);
  for (const button of $$(".lang button")) button.classList.toggle("on", button.dataset.lang === S.lang);
  buildChips();
  buildUseForm();
  renderHeaders();
  renderClock();
  S.lastRender = { telegram: "", slack: "", requests: "" };
  refreshAll();
}

function setLanguage(lang) {
  const wasExample = isExample();
  S.lang = lang;
  localStorage.setItem("sandbox.lang", lang);
  if (wasExample) fillExample({ keepDates: true });
  applyLanguage();
}

// ------------------------------------------------------------------ clock and skip-ahead

function renderClock() {
  const now = serviceNow();
  $("#clock-now").textContent = now.toLocaleString(locale(), {
    weekday: "short", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit",
  });
  $("#clock-offset").textContent =
    S.offsetSeconds > 30 ? t("ahead", { by: formatDuration(S.offsetSeconds) }) : t("realTime");
}

async function readClock() {
  const answer = await call("GET", "/control/clock");
  if (answer.ok) {
    S.now = answer.data.now;
    S.offsetSeconds = answer.data.offset_seconds;
    renderClock();
  }
}

async function skip(by) {
  const buttons = $$(".skip button");
  buttons.forEach((b) => (b.disabled = true));
  try {
    const answer = await call("POST", "/control/clock", { skip: by });
    if (!answer.ok) {
      toast(t("failed", { why: whyOf(answer) }), "bad");
      return;
    }
    S.now = answer.data.now;
    S.offsetSeconds = answer.data.offset_seconds;
    renderClock();
    if (!S.datesTouched) setDefaultDates();
    toast(t("skipped", { by: skipWords(by) }));
    refreshRequests();
  } finally {
    buttons.forEach((b) => (b.disabled = false));
  }
}

// ------------------------------------------------------------------ creator: the form

function buildChips() {
  const groups = [
    ["#f-media", "media", MEDIA, ""],
    ["#f-likeness", "likeness", LIKENESS, ""],
    ["#f-sensitive", "sensitive", SENSITIVE, "sensitive"],
  ];
  for (const [selector, name, values, extra] of groups) {
    const box = $(selector);
    const checked = new Set($$("input:checked", box).map((i) => i.value));
    box.replaceChildren(
      ...values.map((value) =>
        el(
          "label",
          { class: "chip" },
          el("input", { type: "checkbox", name, value, checked: checked.has(value) }),
          el("span", {}, t(`${name}_${value}`)),
        ),
      ),
    );
    if (extra) box.classList.add(extra);
  }
}

function checkedValues(name) {
  return $$(`#request-form input[name="${name}"]:checked`).map((i) => i.value);
}

function setChecked(name, values) {
  for (const input of $$(`#request-form input[name="${name}"]`)) input.checked = values.includes(input.value);
}

function setDefaultDates(windowDays = 30) {
  const now = serviceNow();
  now.setSeconds(0, 0);
  $("#f-starts").value = toLocalInput(now);
  $("#f-ends").value = toLocalInput(new Date(now.getTime() + windowDays * 86400000));
  $("#f-due").value = "";
}

function isExample() {
  const title = $("#f-title").value;
  return !title || Object.values(EXAMPLES).some((e) => e.title === title);
}

function fillExample({ keepDates = false } = {}) {
  const example = EXAMPLES[S.lang] || EXAMPLES.en;
  $("#f-title").value = example.title;
  $("#f-description").value = example.description;
  setChecked("media", ["series"]);
  setChecked("likeness", ["face", "voice"]);
  setChecked("sensitive", []);
  $("#f-territory").value = "CN, HK, SG";
  $("#f-comp-kind").value = "amount";
  $("#f-comp-amount").value = "12000";
  $("#f-comp-currency").value = "CNY";
  $("#f-ai").checked = false;
  $("#f-sublicensing").checked = false;
  $("#f-labeling").value = example.labeling;
  $("#f-refs").value = "https://example.com/neon-harbor/ep3-script.pdf";
  if (!keepDates) {
    S.datesTouched = false;
    setDefaultDates();
  }
  updateCompensation();
  clearErrors();
}

function updateCompensation() {
  const paid = $("#f-comp-kind").value === "amount";
  $("#f-comp-amount").disabled = !paid;
  $("#f-comp-currency").disabled = !paid;
}

function readForm() {
  // Only shape the input; every rule is the API's, so its answer is what the form shows.
  const body = {
    artist_id: $("#f-artist").value,
    project_title: $("#f-title").value,
    use_description: $("#f-description").value,
    media: checkedValues("media"),
    likeness: checkedValues("likeness"),
    territory: $("#f-territory").value.split(/[\s,，;；]+/).filter(Boolean),
    ai_training: $("#f-ai").checked,
    sensitive: checkedValues("sensitive"),
    sublicensing: $("#f-sublicensing").checked,
    reference_urls: $("#f-refs").value.split(/\s*\n\s*/).map((s) => s.trim()).filter(Boolean),
  };
  const starts = fromLocalInput($("#f-starts").value);
  const ends = fromLocalInput($("#f-ends").value);
  const due = fromLocalInput($("#f-due").value);
  if (starts !== undefined) body.starts_at = starts;
  if (ends !== undefined) body.ends_at = ends;
  if (due !== undefined) body.decision_due_at = due;
  const labeling = $("#f-labeling").value.trim();
  if (labeling) body.labeling = labeling;
  const kind = $("#f-comp-kind").value;
  if (kind === "none") body.compensation = "none";
  else if (kind === "amount") {
    body.compensation = { amount: $("#f-comp-amount").value.trim(), currency: $("#f-comp-currency").value.trim() };
  }
  return body;
}

function clearErrors() {
  clearFormErrors("#request-form", "#form-error");
}

// A form's answer from the API cleared: no field marked invalid, the error box above them hidden.
function clearFormErrors(form, errorBox) {
  for (const field of $$(`${form} .field.invalid`)) {
    field.classList.remove("invalid");
    $(".err", field).textContent = "";
  }
  $(errorBox).hidden = true;
  $(errorBox).textContent = "";
}

// FastAPI's 422: detail[] with loc ["body", field, ...]. Each problem goes to the box of `form` whose
// `attr` names its field; one naming no box there is general ("field: message").
function problemsByBox(detail, form, attr) {
  const general = [];
  const byBox = new Map();
  for (const problem of Array.isArray(detail) ? detail : []) {
    const loc = (problem.loc || []).filter((part) => part !== "body");
    const field = loc.length ? String(loc[0]) : "";
    const box = field ? $(`${form} .field[${attr}="${CSS.escape(field)}"]`) : null;
    if (!box) {
      general.push(field ? `${field}: ${problem.msg}` : problem.msg);
      continue;
    }
    if (!byBox.has(box)) byBox.set(box, []);
    byBox.get(box).push({ loc, msg: problem.msg });
  }
  return { general, byBox };
}

// The request form's 422, shown beside the field each problem names.
function showErrors(detail) {
  clearErrors();
  const { general, byBox } = problemsByBox(detail, "#request-form", "data-field");
  for (const [box, problems] of byBox) {
    const items = problems.map(({ loc, msg }) => {
      // A union (compensation: an amount, or "none") reports each branch; the literal one is noise.
      const isLiteral = loc.some((p) => typeof p === "string" && p.startsWith("literal["));
      const where = loc
        .slice(1)
        .filter((p) => !(typeof p === "string" && (/^[A-Z]/.test(p) || p.startsWith("literal["))))
        .map((p) => (typeof p === "number" ? `#${p + 1}` : p));
      return { text: (where.length ? `${where.join(" ")}: ` : "") + msg, isLiteral };
    });
    const useful = items.some((i) => !i.isLiteral) ? items.filter((i) => !i.isLiteral) : items;
    box.classList.add("invalid");
    $(".err", box).textContent = [...new Set(useful.map((i) => i.text))].join(" · ");
  }
  const formError = $("#form-error");
  formError.textContent = [t("fixFields"), ...general].join(" ");
  formError.hidden = false;
  const first = $("#request-form .field.invalid") || formError;
  first.scrollIntoView({ block: "center", behavior: "smooth" });
}

async function submitRequest(event) {
  event.preventDefault();
  const button = $("#send-request");
  button.disabled = true;
  button.textContent = t("sending");
  try {
    const body = readForm();
    const answer = await call("POST", "/v1/requests", body, creatorHeaders({ "Idempotency-Key": newKey() }));
    if (answer.status === 422) {
      showErrors(answer.data && answer.data.detail);
      return;
    }
    if (!answer.ok) {
      clearErrors();
      $("#form-error").textContent = t("failed", { why: whyOf(answer) });
      $("#form-error").hidden = false;
      return;
    }
    clearErrors();
    const artist = artistById(body.artist_id);
    toast(t("sent", { title: body.project_title, artist: artist ? artist.name : body.artist_id }), "good");
    S.flashRequest = answer.data.id;
    if (artist && artist.key !== S.artistKey) selectArtist(artist.key);
    await refreshRequests();
  } catch (error) {
    toast(t("failed", { why: error.message }), "bad");
  } finally {
    button.disabled = false;
    button.textContent = t("send");
  }
}

// ------------------------------------------------------------------ creator: requests

async function refreshRequests() {
  if (!S.config) return;
  const answer = await call("GET", "/v1/requests?limit=50", undefined, creatorHeaders());
  if (!answer.ok) return;
  const requests = answer.data.requests;
  announceDeletionReminders(requests);
  const key = JSON.stringify(requests) + S.lang;
  if (key === S.lastRender.requests && !S.flashRequest) return;
  S.lastRender.requests = key;
  const list = $("#requests");
  $("#request-count").textContent = requests.length ? `(${requests.length})` : "";
  if (!requests.length) {
    list.replaceChildren(el("li", { class: "empty" }, t("noRequests")));
    return;
  }
  list.replaceChildren(...requests.map(requestItem));
  if (S.flashRequest) {
    const item = $(`#requests li[data-request-id="${CSS.escape(S.flashRequest)}"]`);
    if (item) {
      item.classList.add("flash");
      item.scrollIntoView({ block: "nearest", behavior: "smooth" });
      setTimeout(() => item.classList.remove("flash"), 1600);
    }
    S.flashRequest = null;
  }
}

function requestItem(request) {
  const terms = request.terms;
  const artist = artistById(terms.artist_id);
  const open = request.status === "pending" || request.status === "awaiting_cosign";
  const meta = [t("forArtist", { name: artist ? artist.name : terms.artist_id })];
  if (open) meta.push(t("decideBy", { when: formatWhen(request.decision_due_at) }));
  const tags = el("span", { class: "req-tags" });
  if (terms.ai_training) tags.append(el("span", { class: "tag ai" }, `🤖 ${t("aiTag")}`));
  for (const flag of terms.sensitive || []) tags.append(el("span", { class: "tag" }, t(`sensitive_${flag}`)));
  const item = el(
    "li",
    { class: "req", dataset: { requestId: request.id, status: request.status } },
    el(
      "div",
      { class: "req-top" },
      el("span", { class: "req-title" }, terms.project_title),
      el("span", { class: `status s-${request.status}` }, t(`status_${request.status}`)),
    ),
    el("div", { class: "req-meta" }, meta.join(" · "), tags),
  );
  const grant = request.grant;
  if (grant) {
    item.append(
      el(
        "div",
        { class: "req-grant" },
        `${t("grantWord")} `,
        el("span", { class: `grant-state g-${grant.status}` }, t(`grant_${grant.status}`)),
        ` · ${formatWhen(grant.starts_at, false)} → ${formatWhen(grant.ends_at, false)}`,
      ),
    );
  }
  if (grant && grant.deletion) item.append(deletionLine(grant.deletion));
  if (request.reason) item.append(el("div", { class: "req-reason" }, `${t("reasonWord")}: ${request.reason}`));
  const actions = el("div", { class: "req-actions" });
  if (grant) {
    actions.append(
      el("a", { class: "receipt", href: `/v1/grants/${grant.id}/receipt`, onclick: (e) => downloadReceipt(e, grant.id) },
        `🧾 ${t("receipt")}`),
      el("button", { type: "button", class: "use", onclick: () => reportUse(grant.id) }, t("reportUse")),
    );
    if (grant.status === "active") {
      actions.append(
        el(
          "label",
          { class: "output-pick" },
          `🎬 ${t("uploadOutput")}`,
          el("input", {
            type: "file",
            class: "output-file",
            accept: "image/jpeg,image/png,image/webp,video/mp4,audio/mpeg,audio/ogg",
            onchange: (e) => uploadOutput(grant.id, e.currentTarget),
          }),
        ),
      );
    }
  }
  if (grant && grant.deletion) actions.append(deletionAction(grant));
  if (open) {
    actions.append(el("button", { type: "button", class: "withdraw", onclick: () => withdraw(request.id) }, t("withdraw")));
  }
  if (actions.childElementCount) item.append(actions);
  return item;
}

async function uploadOutput(grantId, input) {
  // Multipart, as a studio's own tool would send it: the file's type is the part's Content-Type.
  const file = input.files && input.files[0];
  if (!file) return;
  const form = new FormData();
  form.append("file", file);
  form.append("description", t("outputDescription", { name: file.name }));
  const answer = await call("POST", `/v1/grants/${grantId}/outputs`, form, creatorHeaders());
  input.value = "";
  if (!answer.ok) {
    toast(t("failed", { why: whyOf(answer) }), "bad");
    return;
  }
  toast(t("outputSent"), "good");
}

async function downloadReceipt(event, grantId, kind = "receipt") {
  // The receipt needs the API key, which a plain link cannot send: fetch it, then save it.
  event.preventDefault();
  const answer = await call("GET", `/v1/grants/${grantId}/${kind}`, undefined, creatorHeaders());
  if (!answer.ok) {
    toast(t("failed", { why: whyOf(answer) }), "bad");
    return;
  }
  const blob = new Blob([JSON.stringify(answer.data, null, 2) + "\n"], { type: "application/json" });
  const url = URL.createObjectURL(blob);
  const link = el("a", { href: url, download: `${kind.replace("/", "-")}-${grantId}.json` });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

// ------------------------------------------------------------------ creator: reporting a use

function buildUseForm() {
  const kind = $("#u-kind");
  const chosenKind = kind.value || "render";
  kind.replaceChildren(
    ...USE_KINDS.map((k) => el("option", { value: k, selected: k === chosenKind }, t(`kind_${k}`))),
  );
  const media = $("#u-media");
  const chosenMedia = media.value;
  media.replaceChildren(
    el("option", { value: "" }, t("noMedia")),
    ...MEDIA.map((m) => el("option", { value: m, selected: m === chosenMedia }, t(`media_${m}`))),
  );
  const box = $("#u-likeness");
  const first = !box.childElementCount;
  const checked = first ? new Set(["face"]) : new Set($$("input:checked", box).map((i) => i.value));
  box.replaceChildren(
    ...LIKENESS.map((value) =>
      el(
        "label",
        { class: "chip" },
        el("input", { type: "checkbox", name: "use-likeness", value, checked: checked.has(value) }),
        el("span", {}, t(`likeness_${value}`)),
      ),
    ),
  );
  renderUseNeeds();
}

function renderUseNeeds() {
  const kind = $("#u-kind").value;
  const needs = NEEDS_PLACE.includes(kind) ? t("needsPlace") : NEEDS_LIKENESS.includes(kind) ? t("needsLikeness") : "";
  $("#use-needs").textContent = needs;
}

function reportUse(grantId) {
  S.useGrant = grantId;
  $("#use-grant").textContent = grantId;
  $("#use-form").hidden = false;
  $("#use-answer").hidden = true;
  clearUseErrors();
  $("#use-form").scrollIntoView({ block: "nearest" });
  $("#u-kind").focus();
}

// The use as the API wants it: only what is stated is sent, so a missing field is the API's 422.
function readUse() {
  const body = { kind: $("#u-kind").value, count: Number($("#u-count").value || 1) };
  if ($("#u-media").value) body.media = $("#u-media").value;
  const territory = $("#u-territory").value.split(/[\s,，;；]+/).filter(Boolean);
  if (territory.length) body.territory = territory;
  const likeness = $$("#u-likeness input:checked").map((i) => i.value);
  if (likeness.length) body.likeness = likeness;
  return body;
}

function clearUseErrors() {
  clearFormErrors("#use-form", "#use-error");
}

function showUseErrors(detail) {
  clearUseErrors();
  const { general, byBox } = problemsByBox(detail, "#use-form", "data-use-field");
  for (const [box, problems] of byBox) {
    box.classList.add("invalid");
    $(".err", box).textContent = problems.map((p) => p.msg).join(" · ");
  }
  $("#use-error").textContent = [t("useFix"), ...general].join(" ");
  $("#use-error").hidden = false;
}

async function submitUse(event) {
  event.preventDefault();
  if (!S.useGrant) return;
  const button = $("#use-send");
  const box = $("#use-answer");
  button.disabled = true;
  try {
    const answer = await call("POST", `/v1/grants/${S.useGrant}/usage`, readUse(),
      creatorHeaders({ "Idempotency-Key": newKey() }));
    if (answer.status === 422) {
      box.hidden = true;
      showUseErrors(answer.data && answer.data.detail);
      return;
    }
    clearUseErrors();
    if (answer.status === 201) {
      box.className = "use-answer ok";
      box.dataset.outcome = "inside";
      box.replaceChildren(t("useInside", { id: answer.data.id }));
      toast(t("useRecorded"), "good");
    } else if (answer.status === 409 && answer.data && answer.data.violation) {
      const violation = answer.data.violation;
      box.className = "use-answer violation";
      box.dataset.outcome = "violation";
      box.replaceChildren(
        el("strong", {}, t("useBroke", { id: violation.id })),
        el(
          "ul",
          { class: "reasons" },
          ...violation.reasons.map((code) =>
            el("li", { dataset: { reason: code } }, el("code", {}, code), ` — ${t(`reason_${code}`)}`),
          ),
        ),
      );
      toast(t("useViolation", { reasons: violation.reasons.map((code) => t(`reason_${code}`)).join("; ") }), "bad");
    } else {
      box.className = "use-answer violation";
      box.dataset.outcome = "refused";
      box.replaceChildren(t("failed", { why: whyOf(answer) }));
    }
    box.hidden = false;
  } catch (error) {
    toast(t("failed", { why: error.message }), "bad");
  } finally {
    button.disabled = false;
  }
}

// A revoked grant, or an ended AI-training one, owes a deletion confirmation: the studio sees it
// owed, each reminder the schedule sends it (skip ahead +3d, +7d), and confirms it here.
function deletionLine(deletion) {
  const parts = [];
  if (deletion.status === "confirmed") parts.push(t("deletionConfirmed", { when: formatWhen(deletion.confirmed_at) }));
  else {
    parts.push(t("deletionDue", { when: formatWhen(deletion.due_at) }));
    if (deletion.reminders_sent) parts.push(t("deletionReminded", { count: deletion.reminders_sent }));
    if (deletion.escalated_at) parts.push(t("deletionEscalated"));
  }
  return el("div", { class: `req-deletion d-${deletion.status}` }, `🗑 ${parts.join(" · ")}`);
}

function deletionAction(grant) {
  if (grant.deletion.status === "confirmed") {
    return el("a", { class: "receipt", href: `/v1/grants/${grant.id}/deletion/receipt`,
      onclick: (e) => downloadReceipt(e, grant.id, "deletion/receipt") }, `🧾 ${t("deletionReceipt")}`);
  }
  return el("button", { type: "button", class: "confirm-deletion", onclick: () => confirmDeletion(grant.id) },
    t("confirmDeletion"));
}

function announceDeletionReminders(requests) {
  for (const request of requests) {
    const deletion = request.grant && request.grant.deletion;
    if (!deletion) continue;
    const seen = S.remindersSeen.get(request.grant.id);
    if (seen !== undefined && deletion.reminders_sent > seen && deletion.status === "due") {
      toast(t("deletionReminder", { title: request.terms.project_title }), "bad");
    }
    S.remindersSeen.set(request.grant.id, deletion.reminders_sent);
  }
}

async function confirmDeletion(grantId) {
  const body = { statement: t("deletionStatement"), deleted_at: serviceNow().toISOString() };
  const answer = await call("POST", `/v1/grants/${grantId}/deletion`, body, creatorHeaders({ "Idempotency-Key": newKey() }));
  if (answer.status === 201) toast(t("deletionRecorded"), "good");
  else toast(t("failed", { why: whyOf(answer) }), "bad");
  refreshRequests();
}

async function withdraw(requestId) {
  const answer = await call("POST", `/v1/requests/${requestId}/withdraw`, undefined, creatorHeaders());
  if (answer.ok) toast(t("withdrawn"));
  else toast(t("failed", { why: whyOf(answer) }), "bad");
  refreshRequests();
}

// ------------------------------------------------------------------ Telegram

function selectArtist(key) {
  S.artistKey = key;
  localStorage.setItem("sandbox.artist", key);
  for (const button of $$("#artist-switch button")) button.classList.toggle("on", button.dataset.artist === key);
  renderHeaders();
  S.lastRender.telegram = "";
  refreshTelegram({ toBottom: true });
}

// Telegram clients draw text + entities; offsets count UTF-16 units, like JavaScript strings.
function renderEntities(text, entities) {
  const sorted = (entities || []).slice().sort((a, b) => a.offset - b.offset || b.length - a.length);
  const build = (start, end, list) => {
    const fragment = document.createDocumentFragment();
    let position = start;
    let index = 0;
    while (index < list.length) {
      const entity = list[index];
      if (entity.offset < position) {
        index += 1;
        continue;
      }
      if (entity.offset > position) fragment.append(text.slice(position, entity.offset));
      const stop = Math.min(entity.offset + entity.length, end);
      const inner = [];
      let next = index + 1;
      while (next < list.length && list[next].offset < stop) {
        if (list[next].offset + list[next].length <= stop) inner.push(list[next]);
        next += 1;
      }
      const node = entityNode(entity, text.slice(entity.offset, stop));
      node.append(build(entity.offset, stop, inner));
      fragment.append(node);
      position = stop;
      index = next;
    }
    if (position < end) fragment.append(text.slice(position, end));
    return fragment;
  };
  return build(0, text.length, sorted);
}

function safeUrl(url) {
  return /^(https?:|tg:|mailto:)/i.test(url || "") ? url : null;
}

function entityNode(entity, covered) {
  switch (entity.type) {
    case "bold": return el("b");
    case "italic": return el("i");
    case "underline": return el("u");
    case "strikethrough": return el("s");
    case "code": return el("code");
    case "pre": return el("pre");
    case "blockquote":
    case "expandable_blockquote": return el("blockquote");
    case "spoiler": {
      const node = el("span", { class: "spoiler" });
      node.addEventListener("click", () => node.classList.add("shown"));
      return node;
    }
    case "text_link":
    case "url": {
      const href = safeUrl(entity.url || covered);
      return href ? el("a", { href, target: "_blank", rel: "noopener" }) : el("span");
    }
    case "bot_command":
      return el("span", { class: "cmd", title: covered, onclick: () => sendTelegram(covered) });
    default: return el("span");
  }
}

function telegramTime(seconds) {
  return new Date(seconds * 1000).toLocaleTimeString(locale(), { hour: "2-digit", minute: "2-digit" });
}

function telegramMessage(message, artist) {
  const outgoing = !message.from_bot;
  const bubble = el("div", { class: "tg-bubble" });
  if (message.kind === "photo" && message.photo) {
    bubble.append(el("img", { src: `/sandbox/telegram/files/${encodeURIComponent(message.photo.file_id)}`, alt: "" }));
  } else if (message.kind === "video" && message.video) {
    bubble.append(el("video", { src: `/sandbox/telegram/files/${encodeURIComponent(message.video.file_id)}`, controls: true }));
  } else if (message.kind === "audio" && message.audio) {
    bubble.append(el("audio", { src: `/sandbox/telegram/files/${encodeURIComponent(message.audio.file_id)}`, controls: true }));
  } else if (message.kind === "document" && message.document) {
    bubble.append(
      el("a", {
        class: "tg-doc",
        href: `/sandbox/telegram/files/${encodeURIComponent(message.document.file_id)}`,
        download: message.document.file_name || "file",
      }, `📄 ${message.document.file_name || "file"}`),
      "\n",
    );
  }
  if (message.text) bubble.append(renderEntities(message.text, message.entities));
  bubble.append(
    el("span", { class: "tg-meta" }, message.edit_date ? `${t("edited")} · ` : "", telegramTime(message.edit_date || message.date)),
  );
  const node = el("div", { class: `tg-msg ${outgoing ? "out" : "in"}`, dataset: { messageId: message.message_id } }, bubble);
  const markup = message.reply_markup || {};
  if (Array.isArray(markup.inline_keyboard) && markup.inline_keyboard.length) {
    const keyboard = el("div", { class: "tg-kb" });
    for (const row of markup.inline_keyboard) {
      const line = el("div", { class: "tg-kb-row" });
      for (const button of row) {
        if (button.url) {
          const href = safeUrl(button.url);
          line.append(el("a", { class: "tg-btn", href: href || "#", target: "_blank", rel: "noopener" }, `${button.text} ↗`));
        } else {
          line.append(
            el("button", { type: "button", class: "tg-btn", onclick: (e) => tap(e.currentTarget, message, button, artist) }, button.text),
          );
        }
      }
      keyboard.append(line);
    }
    node.append(keyboard);
  }
  if (markup.force_reply) node.append(el("div", { class: "tg-note" }, t("tgReplyNote")));
  return node;
}

async function refreshTelegram({ toBottom = false } = {}) {
  if (!S.config) return;
  const artist = currentArtist();
  const answer = await call("GET", `/sandbox/telegram/messages?chat_id=${artist.telegram_user_id}&include_user=true`);
  if (!answer.ok) return;
  const messages = answer.data.messages;
  const key = `${artist.key}|${S.lang}|${JSON.stringify(messages)}`;
  if (key === S.lastRender.telegram) return;
  S.lastRender.telegram = key;
  const chat = $("#tg-chat");
  const nearBottom = toBottom || chat.scrollHeight - chat.scrollTop - chat.clientHeight < 80;
  if (!messages.length) chat.replaceChildren(el("div", { class: "tg-empty" }, t("tgEmpty")));
  else chat.replaceChildren(...messages.map((m) => telegramMessage(m, artist)));
  if (nearBottom) chat.scrollTop = chat.scrollHeight;
}

async function tap(buttonNode, message, button, artist) {
  buttonNode.disabled = true;
  buttonNode.classList.add("busy");
  try {
    const answer = await call("POST", "/sandbox/telegram/tap", {
      user_id: artist.telegram_user_id,
      chat_id: message.chat_id,
      message_id: message.message_id,
      button_text: button.text,
    });
    if (!answer.ok) {
      toast(t("failed", { why: whyOf(answer) }), "bad");
      return;
    }
    await showCallbackAnswer(answer.data.callback_query_id);
  } finally {
    buttonNode.disabled = false;
    buttonNode.classList.remove("busy");
  }
}

// The bot answers every tap (Telegram's spinner waits for it); show the answer as Telegram does.
async function showCallbackAnswer(queryId) {
  for (let attempt = 0; attempt < 50; attempt += 1) {
    const answer = await call("GET", `/sandbox/telegram/callback_answers/${encodeURIComponent(queryId)}`);
    const given = answer.ok && answer.data ? answer.data.answer : null;
    if (given) {
      if (!given.text) return;
      if (given.show_alert) telegramAlert(given.text);
      else telegramToast(given.text);
      return;
    }
    await delay(120);
  }
}

function telegramToast(text) {
  const node = $("#tg-toast");
  node.textContent = text;
  node.hidden = false;
  clearTimeout(telegramToast.timer);
  telegramToast.timer = setTimeout(() => (node.hidden = true), 2600);
}

function telegramAlert(text) {
  const close = () => overlay.remove();
  const overlay = el(
    "div",
    { class: "overlay", onclick: (e) => e.target === overlay && close() },
    el(
      "div",
      { class: "dialog tg-alert", role: "alertdialog" },
      el("div", { class: "dialog-body" }, text),
      el("div", { class: "dialog-foot" }, el("button", { type: "button", onclick: close }, t("ok"))),
    ),
  );
  $("#modal-root").append(overlay);
}

async function sendTelegram(text) {
  const words = text.trim();
  if (!words) return;
  const artist = currentArtist();
  const answer = await call("POST", "/sandbox/telegram/send_text", { user_id: artist.telegram_user_id, text: words });
  if (!answer.ok) toast(t("failed", { why: whyOf(answer) }), "bad");
  refreshTelegram({ toBottom: true });
}

// ------------------------------------------------------------------ Slack: mrkdwn

// Each agency has its own workspace: the Slack pane shows the board of the chosen member's agency.
function slackAgency() {
  const member = S.config.members.find((m) => m.id === S.slackUser);
  const own = member && (S.config.agencies || []).find((a) => a.key === member.agency);
  return own || S.config.agency;
}

function memberName(id) {
  const member = S.config.members.find((m) => m.id === id);
  return member ? member.name : id;
}

function slackDate(seconds, format, fallback) {
  const date = new Date(seconds * 1000);
  if (Number.isNaN(date.getTime())) return fallback;
  const day = (options) => date.toLocaleDateString(locale(), options);
  const time = date.toLocaleTimeString(locale(), { hour: "2-digit", minute: "2-digit" });
  return format
    .replace(/\{date_short_pretty\}|\{date_short\}/g, day({ year: "numeric", month: "short", day: "numeric" }))
    .replace(/\{date_long_pretty\}|\{date_long\}/g, day({ weekday: "long", year: "numeric", month: "long", day: "numeric" }))
    .replace(/\{date_pretty\}|\{date\}/g, day({ year: "numeric", month: "long", day: "numeric" }))
    .replace(/\{time_secs\}/g, date.toLocaleTimeString(locale()))
    .replace(/\{time\}/g, time)
    .replace(/\{date_num\}/g, date.toISOString().slice(0, 10));
}

function decodeSlack(text) {
  return text.replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&amp;/g, "&");
}

function emojify(text) {
  return text.replace(/:([a-z0-9_+-]+):/g, (whole, name) => EMOJI[name] || whole);
}

function slackToken(inner) {
  // <@U123>, <#C123|name>, <!date^ts^format|fallback>, <!here>, <url|label>
  const [target, label] = inner.split(/\|(.*)/s);
  if (target.startsWith("@")) return el("span", { class: "mention" }, `@${label || memberName(target.slice(1))}`);
  if (target.startsWith("#")) return el("span", { class: "mention" }, `#${label || target.slice(1)}`);
  if (target.startsWith("!date^")) {
    const [, seconds, format] = target.split("^");
    return document.createTextNode(slackDate(Number(seconds), format || "{date_short} {time}", decodeSlack(label || "")));
  }
  if (target.startsWith("!")) return el("span", { class: "mention" }, `@${target.slice(1).split("^")[0]}`);
  const href = safeUrl(decodeSlack(target));
  const shown = decodeSlack(label || target);
  return href ? el("a", { href, target: "_blank", rel: "noopener" }, shown) : document.createTextNode(shown);
}

const INLINE = "`([^`\\n]+)`|\\*([^*\\n]+)\\*|(^|[^\\w])_([^_\\n]+)_(?![\\w])|~([^~\\n]+)~";

function slackInline(text) {
  // A fresh expression per call: the function recurses into bold and italic text.
  const pattern = new RegExp(INLINE, "g");
  const fragment = document.createDocumentFragment();
  let position = 0;
  for (let match = pattern.exec(text); match; match = pattern.exec(text)) {
    let start = match.index;
    if (match[4] !== undefined) start += match[3].length; // the character before _italic_ stays text
    if (start > position) fragment.append(emojify(text.slice(position, start)));
    if (match[1] !== undefined) fragment.append(el("code", {}, match[1]));
    else if (match[2] !== undefined) fragment.append(el("b", {}, slackInline(match[2])));
    else if (match[4] !== undefined) fragment.append(el("i", {}, slackInline(match[4])));
    else fragment.append(el("s", {}, slackInline(match[5])));
    position = match.index + match[0].length;
  }
  if (position < text.length) fragment.append(emojify(text.slice(position)));
  return fragment;
}

function slackLine(line) {
  const fragment = document.createDocumentFragment();
  const pattern = /<([^<>]+)>/g;
  let position = 0;
  for (let match = pattern.exec(line); match; match = pattern.exec(line)) {
    if (match.index > position) fragment.append(slackInline(decodeSlack(line.slice(position, match.index))));
    fragment.append(slackToken(match[1]));
    position = match.index + match[0].length;
  }
  if (position < line.length) fragment.append(slackInline(decodeSlack(line.slice(position))));
  return fragment;
}

function mrkdwn(text) {
  const fragment = document.createDocumentFragment();
  const lines = String(text || "").split("\n");
  lines.forEach((line, index) => {
    const quoted = line.match(/^(?:&gt;|>)\s?(.*)$/);
    if (quoted) fragment.append(el("div", { class: "sb-quote" }, slackLine(quoted[1])));
    else {
      fragment.append(slackLine(line));
      if (index < lines.length - 1 && !(lines[index + 1] || "").match(/^(?:&gt;|>)/)) fragment.append("\n");
    }
  });
  return fragment;
}

function textObject(object) {
  if (!object) return document.createDocumentFragment();
  if (object.type === "mrkdwn") return mrkdwn(object.text);
  return document.createTextNode(object.emoji === false ? object.text : emojify(object.text || ""));
}

// ------------------------------------------------------------------ Slack: Block Kit

function renderBlocks(blocks, where) {
  const box = el("div", { class: "sb" });
  for (const block of blocks || []) {
    switch (block.type) {
      case "header":
        box.append(el("div", { class: "sb-header" }, textObject(block.text)));
        break;
      case "section": {
        const section = el("div", { class: "sb-section" });
        if (block.text) section.append(textObject(block.text));
        box.append(section);
        if (block.fields) box.append(el("div", { class: "sb-fields" }, block.fields.map((f) => el("div", {}, textObject(f)))));
        if (block.accessory && block.accessory.type === "button") {
          box.append(el("div", { class: "sb-actions" }, slackButton(block.accessory, block, where)));
        }
        break;
      }
      case "divider":
        box.append(el("hr", { class: "sb-divider" }));
        break;
      case "actions":
        box.append(
          el("div", { class: "sb-actions" }, (block.elements || []).filter((e) => e.type === "button").map((e) => slackButton(e, block, where))),
        );
        break;
      case "context":
        box.append(
          el("div", { class: "sb-context" }, (block.elements || []).map((e) =>
            e.type === "image" ? el("img", { src: e.image_url, alt: e.alt_text || "", width: 16, height: 16 }) : textObject(e))),
        );
        break;
      case "image":
        if (safeUrl(block.image_url)) box.append(el("img", { src: block.image_url, alt: block.alt_text || "" }));
        break;
      default:
        if (block.text) box.append(el("div", { class: "sb-section" }, textObject(block.text)));
    }
  }
  return box;
}

function slackButton(element, block, where) {
  const style = element.style === "primary" ? "primary" : element.style === "danger" ? "danger" : "";
  return el(
    "button",
    {
      type: "button",
      class: `sb-btn ${style}`,
      dataset: { actionId: element.action_id },
      onclick: (event) => pressSlackButton(event.currentTarget, element, block, where),
    },
    textObject(element.text),
  );
}

async function pressSlackButton(node, element, block, where) {
  if (element.confirm && !(await confirmDialog(element.confirm))) return;
  node.disabled = true;
  try {
    const answer = await call("POST", "/sandbox/slack/click", {
      user_id: S.slackUser,
      channel: slackAgency().channel,
      message_ts: where.ts,
      action_id: element.action_id,
      block_id: block.block_id,
      value: element.value,
    });
    if (!answer.ok) toast(t("failed", { why: whyOf(answer) }), "bad");
    else if (answer.data && answer.data.status !== 200) toast(t("failed", { why: `the app answered ${answer.data.status}` }), "bad");
    await refreshSlack();
  } finally {
    node.disabled = false;
  }
}

function confirmDialog(confirm) {
  return new Promise((resolve) => {
    const finish = (value) => {
      overlay.remove();
      resolve(value);
    };
    const overlay = el(
      "div",
      { class: "overlay", onclick: (e) => e.target === overlay && finish(false) },
      el(
        "div",
        { class: "dialog slack-confirm", role: "dialog" },
        el("div", { class: "dialog-head" }, el("h3", {}, textObject(confirm.title))),
        el("div", { class: "dialog-body" }, textObject(confirm.text)),
        el(
          "div",
          { class: "dialog-foot" },
          el("button", { type: "button", onclick: () => finish(false) }, textObject(confirm.deny || { type: "plain_text", text: t("cancel") })),
          el("button", { type: "button", class: "go confirm-go", onclick: () => finish(true) },
            textObject(confirm.confirm || { type: "plain_text", text: t("ok") })),
        ),
      ),
    );
    $("#modal-root").append(overlay);
  });
}

// ------------------------------------------------------------------ Slack: the channel

function slackTime(ts) {
  return new Date(parseFloat(ts) * 1000).toLocaleTimeString(locale(), { hour: "2-digit", minute: "2-digit" });
}

function slackFiles(files) {
  if (!files || !files.length) return null;
  return el(
    "div",
    { class: "slack-files" },
    files.map((file) => {
      const href = `/sandbox/slack/files/${encodeURIComponent(file.id)}`;
      if ((file.mimetype || "").startsWith("image/")) return el("img", { src: href, alt: file.title || file.name });
      return el("a", { class: "slack-file", href, download: file.name }, `📎 ${file.title || file.name}`);
    }),
  );
}

function slackBody(message, part = "reply") {
  const body = document.createDocumentFragment();
  if (message.blocks && message.blocks.length) {
    const blocks = renderBlocks(message.blocks, { ts: message.ts || message.message_ts });
    blocks.dataset.part = part;
    body.append(blocks);
  }
  else if (message.text) body.append(el("div", { class: "slack-text" }, mrkdwn(message.text)));
  const files = slackFiles(message.files);
  if (files) body.append(files);
  return body;
}

function slackAuthor(ts, edited) {
  return el(
    "div",
    {},
    el("span", { class: "slack-name" }, S.config.bot.name),
    el("span", { class: "slack-app" }, "APP"),
    el("span", { class: "slack-time" }, slackTime(ts)),
    edited ? el("span", { class: "slack-edited" }, `(${t("edited")})`) : null,
  );
}

function slackRoot(message) {
  const body = el("div", { class: "slack-body" }, slackAuthor(message.ts, message.edited), slackBody(message, "root"));
  const replies = (message.replies || []).filter((r) => !r.deleted);
  if (replies.length) {
    const thread = el(
      "div",
      { class: "slack-thread" },
      el("div", { class: "slack-thread-count" }, replies.length === 1 ? t("oneReply") : t("replies", { n: replies.length })),
    );
    for (const reply of replies) {
      const broadcast = reply.reply_broadcast ? el("div", { class: "slack-broadcast" }, `↪ ${t("alsoChannel")}`) : null;
      const replyBody = el("div", { class: "slack-body" }, slackAuthor(reply.ts, reply.edited), broadcast, slackBody(reply));
      thread.append(slackRow("slack-reply", reply.ts, "slack-avatar small", replyBody));
    }
    body.append(thread);
  }
  return slackRow("slack-msg", message.ts, "slack-avatar", body);
}

// One row of the Slack pane: the app's avatar beside what it said.
function slackRow(rowClass, ts, avatarClass, body) {
  return el("div", { class: rowClass, dataset: { ts } }, el("span", { class: avatarClass }, "LC"), body);
}

function slackEphemeral(entry) {
  const only = el("div", { class: "slack-only" }, `👁 ${t("onlyYou")}`);
  const body = el("div", { class: "slack-body" }, only, slackAuthor(entry.message_ts, null), slackBody(entry));
  return slackRow("slack-msg ephemeral", entry.message_ts, "slack-avatar", body);
}

async function refreshSlack() {
  if (!S.config) return;
  const channel = slackAgency().channel;
  const user = S.slackUser;
  const [messages, ephemerals, views] = await Promise.all([
    call("GET", `/sandbox/slack/messages?channel=${channel}`),
    call("GET", `/sandbox/slack/ephemerals?channel=${channel}&user=${user}`),
    call("GET", "/sandbox/slack/views"),
  ]);
  if (!messages.ok || !ephemerals.ok || !views.ok) return;
  const roots = messages.data.filter((m) => !m.deleted);
  const key = `${user}|${S.lang}|${JSON.stringify(roots)}|${JSON.stringify(ephemerals.data)}`;
  if (key !== S.lastRender.slack) {
    S.lastRender.slack = key;
    const feed = $("#slack-feed");
    const nearBottom = feed.scrollHeight - feed.scrollTop - feed.clientHeight < 80;
    const items = [
      ...roots.map((m) => ({ ts: parseFloat(m.ts), node: () => slackRoot(m) })),
      ...ephemerals.data.map((e) => ({ ts: parseFloat(e.message_ts), node: () => slackEphemeral(e) })),
    ].sort((a, b) => a.ts - b.ts);
    if (!items.length) feed.replaceChildren(el("div", { class: "slack-empty" }, t("slackEmpty")));
    else feed.replaceChildren(...items.map((i) => i.node()));
    if (nearBottom) feed.scrollTop = feed.scrollHeight;
  }
  showSlackView(views.data);
}

// ------------------------------------------------------------------ Slack: modals

function showSlackView(views) {
  const mine = views.filter((v) => v.user_id === S.slackUser && v.open && !S.dismissedViews.has(v.id));
  const view = mine[mine.length - 1];
  const current = S.openView;
  if (!view) {
    if (current) closeSlackView(false);
    return;
  }
  const fingerprint = JSON.stringify([view.id, view.view.hash, view.errors]);
  if (current && current.fingerprint === fingerprint) return;
  const typed = current && current.id === view.id ? readModalValues() : {};
  if (current) current.overlay.remove();
  const overlay = renderModal(view, typed);
  S.openView = { id: view.id, fingerprint, overlay };
  $("#modal-root").append(overlay);
  const first = $("textarea, input", overlay);
  if (first) first.focus();
}

function renderModal(view, typed) {
  const spec = view.view;
  const errors = view.errors || {};
  const body = el("div", { class: "dialog-body" });
  for (const block of spec.blocks || []) {
    if (block.type === "input" && block.element) {
      const element = block.element;
      const id = `modal-${block.block_id}`;
      const props = {
        id,
        dataset: { blockId: block.block_id, actionId: element.action_id },
        placeholder: element.placeholder ? element.placeholder.text : undefined,
        maxlength: element.max_length,
      };
      const input = element.multiline ? el("textarea", { ...props, rows: 4 }) : el("input", props);
      input.value = typed[block.block_id] !== undefined ? typed[block.block_id] : element.initial_value || "";
      body.append(el("label", { for: id }, textObject(block.label)), input);
      if (errors[block.block_id]) body.append(el("div", { class: "modal-err" }, errors[block.block_id]));
    } else {
      body.append(renderBlocks([block], { ts: null }));
    }
  }
  const overlay = el(
    "div",
    { class: "overlay", id: "slack-modal" },
    el(
      "form",
      { class: "dialog", role: "dialog", onsubmit: (e) => { e.preventDefault(); submitSlackView(view); } },
      el(
        "div",
        { class: "dialog-head" },
        el("h3", {}, textObject(spec.title)),
        el("button", { type: "button", class: "dialog-close", "aria-label": "close", onclick: () => closeSlackView(true) }, "×"),
      ),
      body,
      el(
        "div",
        { class: "dialog-foot" },
        el("button", { type: "button", class: "modal-cancel", onclick: () => closeSlackView(true) },
          textObject(spec.close || { type: "plain_text", text: t("cancel") })),
        spec.submit ? el("button", { type: "submit", class: "go danger modal-submit" }, textObject(spec.submit)) : null,
      ),
    ),
  );
  return overlay;
}

function readModalValues() {
  const values = {};
  if (!S.openView) return values;
  for (const input of $$("[data-block-id]", S.openView.overlay)) values[input.dataset.blockId] = input.value;
  return values;
}

function closeSlackView(dismiss) {
  if (!S.openView) return;
  if (dismiss) S.dismissedViews.add(S.openView.id);
  S.openView.overlay.remove();
  S.openView = null;
}

async function submitSlackView(view) {
  const values = {};
  for (const input of $$("[data-block-id]", S.openView.overlay)) {
    values[input.dataset.blockId] = { [input.dataset.actionId]: input.value };
  }
  const button = $(".modal-submit", S.openView.overlay);
  if (button) button.disabled = true;
  const answer = await call("POST", "/sandbox/slack/submit_view", { user_id: S.slackUser, view_id: view.id, values });
  if (button) button.disabled = false;
  if (!answer.ok) {
    toast(t("failed", { why: whyOf(answer) }), "bad");
    return;
  }
  await refreshSlack();
}

async function runSlashCommand(text) {
  const words = text.trim();
  if (!words) return;
  const match = words.match(/^(\/\S+)\s*(.*)$/s);
  if (!match) {
    toast(t("slackNotCommand"));
    return;
  }
  const answer = await call("POST", "/sandbox/slack/slash_command", {
    user_id: S.slackUser,
    channel: slackAgency().channel,
    command: match[1],
    text: match[2],
  });
  if (!answer.ok) toast(t("failed", { why: whyOf(answer) }), "bad");
  await refreshSlack();
  const feed = $("#slack-feed");
  feed.scrollTop = feed.scrollHeight;
}

// ------------------------------------------------------------------ headers and wiring

function renderHeaders() {
  if (!S.config) return;
  $("#creator-sub").textContent = t("creatorSub", { name: S.config.creator.name });
  $("#tg-bot").textContent = t("tgBot", { username: S.config.bot.username });
  const artist = currentArtist();
  const language = artist.language.startsWith("zh") ? t("lang_zh") : t("lang_en");
  const lines = [...(artist.red_lines.sensitive || []).map((s) => t(`sensitive_${s}`)),
    ...(artist.red_lines.media || []).map((m) => t(`media_${m}`))];
  $("#tg-who").textContent = `${t("tgWho", { name: artist.name, policy: t(`policy_${artist.policy}`), language })} · ${
    lines.length ? t("redLines", { lines: lines.join(", ") }) : t("noRedLines")}`;
  for (const option of $$("#f-artist option")) {
    const who = artistById(option.value);
    option.textContent = `${who.name} — ${t(`policy_${who.policy}`)}`;
  }
  const chosen = artistById($("#f-artist").value);
  if (chosen) {
    const chosenLines = [...(chosen.red_lines.sensitive || []).map((s) => t(`sensitive_${s}`)),
      ...(chosen.red_lines.media || []).map((m) => t(`media_${m}`))];
    $("#artist-hint").textContent = `${chosen.timezone} · ${
      chosenLines.length ? t("redLines", { lines: chosenLines.join(", ") }) : t("noRedLines")}`;
  }
  $("#slack-title").textContent = slackAgency().channel_name;
  $("#slack-sub").textContent = t("slackSub", { agency: slackAgency().name });
  for (const option of $$("#slack-user option")) {
    const member = S.config.members.find((m) => m.id === option.value);
    option.textContent = `${member.name} (${member.listed ? t("listed") : t("notListed")})`;
  }
}

function wire() {
  $("#request-form").addEventListener("submit", submitRequest);
  $("#use-form").addEventListener("submit", submitUse);
  $("#use-close").addEventListener("click", () => ($("#use-form").hidden = true));
  $("#u-kind").addEventListener("change", renderUseNeeds);
  $("#fill-example").addEventListener("click", () => fillExample());
  $("#f-comp-kind").addEventListener("change", updateCompensation);
  $("#f-artist").addEventListener("change", renderHeaders);
  for (const id of ["#f-starts", "#f-ends", "#f-due"]) $(id).addEventListener("input", () => (S.datesTouched = true));
  for (const button of $$("[data-window]")) {
    button.addEventListener("click", () => {
      const starts = $("#f-starts").value ? new Date($("#f-starts").value) : serviceNow();
      $("#f-ends").value = toLocalInput(new Date(starts.getTime() + Number(button.dataset.window) * 86400000));
      S.datesTouched = true;
    });
  }
  for (const button of $$("[data-skip]")) button.addEventListener("click", () => skip(button.dataset.skip));
  for (const button of $$("[data-lang]")) button.addEventListener("click", () => setLanguage(button.dataset.lang));
  wireComposer("tg", TG_COMMANDS, sendTelegram);
  wireComposer("slack", SLACK_COMMANDS, runSlashCommand);
  $("#slack-user").addEventListener("change", (event) => {
    S.slackUser = event.target.value;
    closeSlackView(false);
    S.lastRender.slack = "";
    renderHeaders();
    refreshSlack();
  });
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && S.openView) closeSlackView(true);
  });
}

// A chat's composer (#<chat>-form, -input, -commands): what is typed is sent with `send`, and so is
// each quick command, one button each.
function wireComposer(chat, commands, send) {
  $(`#${chat}-form`).addEventListener("submit", (event) => {
    event.preventDefault();
    const input = $(`#${chat}-input`);
    send(input.value);
    input.value = "";
  });
  $(`#${chat}-commands`).replaceChildren(
    ...commands.map((c) => el("button", { type: "button", onclick: () => send(c) }, c)),
  );
}

function populate() {
  const config = S.config;
  $("#f-artist").replaceChildren(...config.artists.map((a) => el("option", { value: a.id }, a.name)));
  const maya = config.artists.find((a) => a.language === "en") || config.artists[0];
  $("#f-artist").value = maya.id;
  $("#artist-switch").replaceChildren(
    ...config.artists.map((a) =>
      el("button", { type: "button", role: "tab", dataset: { artist: a.key }, onclick: () => selectArtist(a.key) }, a.first_name),
    ),
  );
  const remembered = localStorage.getItem("sandbox.artist");
  S.artistKey = config.artists.some((a) => a.key === remembered) ? remembered : maya.key;
  for (const button of $$("#artist-switch button")) button.classList.toggle("on", button.dataset.artist === S.artistKey);
  $("#slack-user").replaceChildren(...config.members.map((m) => el("option", { value: m.id }, m.name)));
  S.slackUser = config.members.find((m) => m.listed).id;
  $("#slack-user").value = S.slackUser;
}

async function refreshAll() {
  await Promise.all([refreshRequests(), refreshTelegram(), refreshSlack()]);
}

// One loop keeps all three panes live: it returns when either simulator changes (or every few
// seconds), and the requests are read each time too, since the API's own changes have no signal.
async function watch() {
  for (;;) {
    try {
      const { telegram, slack } = S.versions;
      const answer = await call("GET", `/sandbox/changes?telegram=${telegram}&slack=${slack}`);
      if (!answer.ok) throw new Error(whyOf(answer));
      $("#offline").hidden = true;
      S.now = answer.data.now;
      renderClock();
      const telegramMoved = answer.data.telegram !== telegram;
      const slackMoved = answer.data.slack !== slack;
      S.versions = { telegram: answer.data.telegram, slack: answer.data.slack };
      await Promise.all([
        telegramMoved ? refreshTelegram() : null,
        slackMoved ? refreshSlack() : null,
        refreshRequests(),
      ]);
    } catch {
      $("#offline").hidden = false;
      await delay(1500);
    }
  }
}

async function start() {
  S.lang = localStorage.getItem("sandbox.lang") || ((navigator.language || "").startsWith("zh") ? "zh" : "en");
  wire();
  for (;;) {
    const answer = await call("GET", "/sandbox/config").catch(() => ({ ok: false }));
    if (answer.ok) {
      S.config = answer.data;
      break;
    }
    await delay(500);
  }
  populate();
  await readClock();
  buildChips();
  fillExample();
  applyLanguage();
  selectArtist(S.artistKey);
  document.body.dataset.ready = "true";
  watch();
}

start();
