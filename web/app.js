// Fristad's page: one script for every role. It speaks only to its own server: the JSON API
// (POST /api/v1/OP, the protocol's ops) and the watch (GET /api/v1/watch, server-sent events).
// Who the person is comes from the certificate the browser presented; nothing is stored in the
// browser but the chosen language.
"use strict";

const TZ = "Europe/Stockholm";

const TEXT = {
  sv: {
    skip: "Hoppa till innehållet", loading: "Hämtar…",
    "noaccess.title": "Ingen behörighet",
    "role.shelter": "Boende", "role.social": "Socialtjänsten", "role.oncall": "Socialjouren",
    "role.admin": "Administratör",
    "live.on": "Uppdateras direkt", "live.off": "Återansluter…",
    "referral.title": "Sök plats", "referral.home": "Hemkommun",
    "referral.muniHint": "Skriv namn eller kommunkod", "referral.risk": "Risknivå",
    "referral.adults": "Vuxna", "referral.group": "Målgrupp", "referral.children": "Barn",
    "referral.addChild": "Lägg till barn", "referral.needs": "Behov",
    "referral.language": "Språk som behövs (ISO-kod, t.ex. ar)",
    "referral.perpetrator": "Förövarens kommuner (bor eller arbetar)",
    "referral.addMuni": "Lägg till kommun",
    "referral.arrival": "Planerad ankomst (svensk tid, tomt = nu)",
    "referral.for": "Ansvarig kommun", "referral.ref": "Ärendereferens (från ert verksamhetssystem)",
    "referral.callback": "Ert direktnummer (för boendet)",
    "referral.privacy": "Skriv aldrig namn, personnummer eller adress: bara ärendereferensen.",
    "referral.search": "Sök",
    "risk.low": "Låg", "risk.moderate": "Måttlig", "risk.high": "Hög", "risk.severe": "Mycket hög",
    "group.women": "Kvinnor", "group.men": "Män", "group.hbtqi": "Hbtqi-personer",
    "group.youth": "Unga vuxna",
    "need.wheelchair": "Rullstol", "need.pets": "Husdjur", "need.substance": "Stöd vid missbruk",
    "referral.competences": "Särskild kompetens som behövs",
    "comp.hbv": "Hedersrelaterat våld", "comp.psychiatric": "Psykiatri",
    "comp.npf": "Neuropsykiatrisk funktionsnedsättning",
    "comp.intellectual_disability": "Intellektuell funktionsnedsättning",
    "comp.deaf": "Döva och hörselskadade", "comp.interpreter": "Tolk",
    "child.age": "Ålder", "child.sex": "Kön", "sex.f": "Flicka", "sex.m": "Pojke",
    "remove": "Ta bort",
    "results.title": "Lediga platser som passar",
    "results.count": "{n} platser passar, bäst först.", "results.one": "1 plats passar.",
    "results.none": "Ingen ledig plats passar. Så här många lediga platser uteslöts, och varför:",
    "results.noneAtAll": "Ingen ledig plats passar, och inga lediga platser finns att pröva.",
    "results.hold": "Reservera", "results.receivesNow": "Kan ta emot nu",
    "results.receivesFrom": "Kan ta emot från {t}",
    "fresh": "Aktuell", "stale": "Inaktuell", "age": "uppdaterad för {a} sedan",
    "col.shelter": "Boende", "col.municipality": "Kommun", "col.protection": "Skyddsnivå",
    "col.units": "Platser (lediga)", "col.state": "Läge", "col.beds": "Bäddar",
    "col.distance": "Avstånd", "col.time": "Tid", "col.op": "Åtgärd", "col.result": "Resultat",
    "col.target": "Gäller", "col.household": "Hushåll", "col.needs": "Behov",
    "col.risk": "Risknivå", "col.callback": "Ring", "col.expires": "Gäller till",
    "col.ref": "Ärende", "col.unit": "Plats", "col.phone": "Intagstelefon",
    "col.placed": "Placerad", "col.matches": "Träffar", "col.who": "Vem",
    "count.made": "gjorda", "count.accepted": "accepterade", "count.confirmed": "anlända",
    "count.declined": "avböjda", "count.released": "släppta", "count.expired": "utgångna",
    "count.discharged": "utskrivna", "count.matched": "med träff",
    "count.expired_without_match": "utgångna utan träff",
    "count.cancelled_without_match": "avbrutna utan träff", "count.wait_ms": "total väntan (ms)",
    "km": "{n} km", "none": "inga",
    "household": "{a} vuxna", "household.one": "1 vuxen",
    "child.desc": "{sex} {age} år",
    "reason.safety_policy": "säkerhetspolicyn (kommunen är utesluten)",
    "reason.protection_level": "för låg skyddsnivå", "reason.beds": "för få bäddar",
    "reason.children_limit": "tar emot färre barn", "reason.boys_age": "pojkens ålder",
    "reason.target_group": "annan målgrupp", "reason.wheelchair": "inte tillgänglig för rullstol",
    "reason.pets": "tar inte emot husdjur", "reason.substance": "ger inte stöd vid missbruk",
    "reason.language": "språket saknas", "reason.competence": "saknar kompetensen som behövs",
    "reason.permit": "skyddat boende utan IVO-tillstånd",
    "state.held": "Reserverad – väntar på svar", "state.accepted": "Accepterad – välkommen",
    "state.confirmed": "Anländ – placerad", "state.declined": "Avböjd", "state.released": "Släppt",
    "state.expired": "Har gått ut", "state.active": "Pågår", "state.discharged": "Utskriven",
    "state.cancelled": "Avbruten",
    "holds.mine": "Mina reservationer", "holds.none": "Inga reservationer.",
    "holds.release": "Släpp", "holds.held": "Reserverat: {s}, plats {u}. Ring {p}.",
    "holds.needRef": "Ange ärendereferensen innan ni reserverar.",
    "standing.title": "Bevakningar", "standing.none": "Inga bevakningar.",
    "standing.add": "Bevaka: meddela mig när en plats passar", "standing.cancel": "Avbryt bevakning",
    "standing.added": "Bevakningen är startad. Ni får ett meddelande här när en plats passar.",
    "standing.match": "En plats som passar er bevakning har blivit ledig: {s}, plats {u}. Sök igen för att reservera.",
    "placements.title": "Placeringar", "placements.none": "Inga placeringar.",
    "shelter.confirm": "Inget har ändrats", "shelter.pause": "Pausa intag",
    "shelter.resume": "Återuppta intag", "shelter.paused": "Intaget är pausat: inga platser erbjuds.",
    "shelter.open": "Intaget är öppet.", "shelter.units": "Platser",
    "shelter.incoming": "Inkommande reservationer", "shelter.noIncoming": "Inga reservationer just nu.",
    "shelter.accept": "Acceptera", "shelter.arrivalBy": "Ankomst senast (valfritt)",
    "shelter.arrived": "Har anlänt", "shelter.decline": "Avböj",
    "shelter.declineReason": "Skäl", "shelter.note": "Kommentar (valfri, inga namn)",
    "shelter.discharge": "Skriv ut", "shelter.confirmed": "Tack: uppgifterna är bekräftade som aktuella.",
    "shelter.newHold": "Ny reservation: {u}. Svara så snart ni kan.",
    "shelter.heldUnit": "reserverad", "shelter.updated": "Senast uppdaterad {t}",
    "vac.free": "Ledig", "vac.occupied": "Upptagen", "vac.closed": "Stängd",
    "decline.no_room": "Platsen är inte ledig", "decline.household": "Hushållets sammansättning",
    "decline.needs": "Behov kan inte mötas", "decline.safety": "Säkerhetsskäl",
    "decline.staffing": "Bemanning", "decline.other": "Annat",
    "admin.registry": "Boenden", "admin.addShelter": "Registrera boende",
    "admin.addUnit": "Lägg till plats", "admin.id": "Id (a–z, 0–9, -)", "admin.name": "Namn",
    "admin.kind": "Typ", "admin.phone": "Intagstelefon", "admin.add": "Registrera",
    "admin.unit": "Plats-id", "admin.accessible": "Tillgänglig för rullstol",
    "admin.audit": "Logg", "admin.since": "Från (svensk tid)",
    "admin.principal": "Vem (t.ex. social:0180)", "admin.limit": "Högst antal",
    "admin.show": "Visa", "admin.stats": "Statistik", "admin.saved": "Sparat.",
    "admin.retired": "avvecklat", "admin.paused": "pausat",
    "admin.operator": "Huvudman", "admin.operatorNone": "Ej angiven",
    "operator.ideell": "Ideell", "operator.privat": "Privat", "operator.kommunal": "Kommunal",
    "admin.permit": "IVO-tillstånd (diarienummer)", "admin.permitDate": "Tillstånd beviljat",
    "admin.registered": "Kommunal verksamhet anmäld till IVO",
    "admin.competences": "Särskild kompetens",
    "admin.permitHint": "Skyddat boende erbjuds bara med huvudman och IVO-tillstånd (eller, för kommunal verksamhet, anmälan).",
    "kind.kvinnojour": "Kvinnojour", "kind.skyddat_boende": "Skyddat boende",
    "kind.kriscentrum": "Kriscentrum", "kind.other": "Annat",
    "stats.searches": "Sökningar", "stats.no_match": "Utan träff", "stats.ruled_out": "Uteslutna av",
    "stats.holds": "Reservationer", "stats.declines": "Avböjanden", "stats.placements": "Placeringar",
    "stats.standing": "Bevakningar",
    "err.unknownMuni": "Okänd kommun: {v}. Välj ur listan eller skriv kommunkoden.",
    "err.ambiguousMuni": "{v} kan vara flera kommuner: {c}. Skriv hela namnet eller koden.",
    "err.network": "Servern svarar inte. Försök igen om en stund.",
    "err.bad_request": "Uppgifterna kunde inte godtas", "err.forbidden": "Ingen behörighet",
    "err.unauthorized": "Certifikatet anger ingen roll", "err.not_found": "Finns inte",
    "err.conflict": "Läget har ändrats", "err.unavailable": "Tillfälligt otillgängligt",
    "err.rate_limited": "För många förfrågningar; vänta lite",
    "err.personal_data": "Ett fält ser ut att innehålla personuppgifter",
    "err.ineligible": "Platsen passar inte förfrågan", "err.limit_reached": "Gränsen är nådd",
    "err.outcome_unknown": "Oklart om det gick igenom; titta i listan innan ni försöker igen",
    "err.internal": "Fel i servern",
    "noaccess.text": "Certifikatet som webbläsaren visade anger ingen användbar roll: {m}",
    "ago.s": "{n} s", "ago.m": "{n} min", "ago.h": "{n} tim", "ago.d": "{n} dygn",
  },
  en: {
    skip: "Skip to content", loading: "Loading…",
    "noaccess.title": "No access",
    "role.shelter": "Shelter", "role.social": "Social services", "role.oncall": "On-call service",
    "role.admin": "Administrator",
    "live.on": "Live", "live.off": "Reconnecting…",
    "referral.title": "Find a place", "referral.home": "Home municipality",
    "referral.muniHint": "Type a name or municipality code", "referral.risk": "Risk level",
    "referral.adults": "Adults", "referral.group": "Target group", "referral.children": "Children",
    "referral.addChild": "Add a child", "referral.needs": "Needs",
    "referral.language": "Language needed (ISO code, e.g. ar)",
    "referral.perpetrator": "Perpetrator's municipalities (lives or works)",
    "referral.addMuni": "Add a municipality",
    "referral.arrival": "Planned arrival (Swedish time, empty = now)",
    "referral.for": "Responsible municipality",
    "referral.ref": "Case reference (from your case system)",
    "referral.callback": "Your direct line (for the shelter)",
    "referral.privacy": "Never write names, personal identity numbers or addresses: only the case reference.",
    "referral.search": "Search",
    "risk.low": "Low", "risk.moderate": "Moderate", "risk.high": "High", "risk.severe": "Severe",
    "group.women": "Women", "group.men": "Men", "group.hbtqi": "LGBTQI people",
    "group.youth": "Young adults",
    "need.wheelchair": "Wheelchair", "need.pets": "Pets", "need.substance": "Substance-use support",
    "referral.competences": "Specialist competence needed",
    "comp.hbv": "Honour-related violence", "comp.psychiatric": "Psychiatry",
    "comp.npf": "Neurodevelopmental disorder", "comp.intellectual_disability": "Intellectual disability",
    "comp.deaf": "Deaf and hard of hearing", "comp.interpreter": "Interpreter",
    "child.age": "Age", "child.sex": "Sex", "sex.f": "Girl", "sex.m": "Boy",
    "remove": "Remove",
    "results.title": "Free places that fit",
    "results.count": "{n} places fit, best first.", "results.one": "1 place fits.",
    "results.none": "No free place fits. How many free places were ruled out, and why:",
    "results.noneAtAll": "No free place fits, and there are no free places to try.",
    "results.hold": "Hold", "results.receivesNow": "Can receive now",
    "results.receivesFrom": "Can receive from {t}",
    "fresh": "Current", "stale": "Stale", "age": "updated {a} ago",
    "col.shelter": "Shelter", "col.municipality": "Municipality", "col.protection": "Protection",
    "col.units": "Units (free)", "col.state": "State", "col.beds": "Beds",
    "col.distance": "Distance", "col.time": "Time", "col.op": "Action", "col.result": "Result",
    "col.target": "Concerns", "col.household": "Household", "col.needs": "Needs",
    "col.risk": "Risk level", "col.callback": "Call", "col.expires": "Valid until",
    "col.ref": "Case", "col.unit": "Unit", "col.phone": "Intake phone",
    "col.placed": "Placed", "col.matches": "Matches", "col.who": "Who",
    "count.made": "made", "count.accepted": "accepted", "count.confirmed": "arrived",
    "count.declined": "declined", "count.released": "released", "count.expired": "expired",
    "count.discharged": "discharged", "count.matched": "matched",
    "count.expired_without_match": "expired without a match",
    "count.cancelled_without_match": "cancelled without a match", "count.wait_ms": "total wait (ms)",
    "km": "{n} km", "none": "none",
    "household": "{a} adults", "household.one": "1 adult",
    "child.desc": "{sex} {age} years",
    "reason.safety_policy": "safety policy (municipality excluded)",
    "reason.protection_level": "protection level too low", "reason.beds": "too few beds",
    "reason.children_limit": "takes fewer children", "reason.boys_age": "the boy's age",
    "reason.target_group": "another target group", "reason.wheelchair": "not wheelchair accessible",
    "reason.pets": "takes no pets", "reason.substance": "no substance-use support",
    "reason.language": "language not spoken", "reason.competence": "lacks a competence needed",
    "reason.permit": "protected housing without an IVO permit",
    "state.held": "Held – awaiting an answer", "state.accepted": "Accepted – welcome",
    "state.confirmed": "Arrived – placed", "state.declined": "Declined", "state.released": "Released",
    "state.expired": "Expired", "state.active": "Active", "state.discharged": "Discharged",
    "state.cancelled": "Cancelled",
    "holds.mine": "My holds", "holds.none": "No holds.",
    "holds.release": "Release", "holds.held": "Held: {s}, unit {u}. Call {p}.",
    "holds.needRef": "Enter the case reference before holding.",
    "standing.title": "Standing searches", "standing.none": "No standing searches.",
    "standing.add": "Watch: tell me when a place fits", "standing.cancel": "Cancel",
    "standing.added": "The standing search has started. You will be told here when a place fits.",
    "standing.match": "A place that fits your standing search has become free: {s}, unit {u}. Search again to hold it.",
    "placements.title": "Placements", "placements.none": "No placements.",
    "shelter.confirm": "Nothing has changed", "shelter.pause": "Pause intake",
    "shelter.resume": "Resume intake", "shelter.paused": "Intake is paused: no places are offered.",
    "shelter.open": "Intake is open.", "shelter.units": "Units",
    "shelter.incoming": "Incoming holds", "shelter.noIncoming": "No holds right now.",
    "shelter.accept": "Accept", "shelter.arrivalBy": "Arrival by (optional)",
    "shelter.arrived": "Has arrived", "shelter.decline": "Decline",
    "shelter.declineReason": "Reason", "shelter.note": "Note (optional, no names)",
    "shelter.discharge": "Discharge", "shelter.confirmed": "Thank you: the vacancies are confirmed as current.",
    "shelter.newHold": "New hold: {u}. Please answer as soon as you can.",
    "shelter.heldUnit": "held", "shelter.updated": "Last updated {t}",
    "vac.free": "Free", "vac.occupied": "Occupied", "vac.closed": "Closed",
    "decline.no_room": "The unit is not free", "decline.household": "The household's composition",
    "decline.needs": "A need cannot be met", "decline.safety": "Safety concern",
    "decline.staffing": "Staffing", "decline.other": "Other",
    "admin.registry": "Shelters", "admin.addShelter": "Register a shelter",
    "admin.addUnit": "Add a unit", "admin.id": "Id (a–z, 0–9, -)", "admin.name": "Name",
    "admin.kind": "Kind", "admin.phone": "Intake phone", "admin.add": "Register",
    "admin.unit": "Unit id", "admin.accessible": "Wheelchair accessible",
    "admin.audit": "Audit trail", "admin.since": "From (Swedish time)",
    "admin.principal": "Who (e.g. social:0180)", "admin.limit": "At most",
    "admin.show": "Show", "admin.stats": "Statistics", "admin.saved": "Saved.",
    "admin.retired": "retired", "admin.paused": "paused",
    "admin.operator": "Operator", "admin.operatorNone": "Not given",
    "operator.ideell": "Non-profit", "operator.privat": "Private", "operator.kommunal": "Municipal",
    "admin.permit": "IVO permit (case number)", "admin.permitDate": "Permit granted",
    "admin.registered": "Municipal service registered with IVO",
    "admin.competences": "Specialist competences",
    "admin.permitHint": "Protected housing is offered only with an operator and an IVO permit (or, for a municipal service, its registration).",
    "kind.kvinnojour": "Women's shelter", "kind.skyddat_boende": "Protected housing",
    "kind.kriscentrum": "Crisis centre", "kind.other": "Other",
    "stats.searches": "Searches", "stats.no_match": "Without a match", "stats.ruled_out": "Ruled out by",
    "stats.holds": "Holds", "stats.declines": "Declines", "stats.placements": "Placements",
    "stats.standing": "Standing searches",
    "err.unknownMuni": "Unknown municipality: {v}. Pick one from the list or type its code.",
    "err.ambiguousMuni": "{v} could be several municipalities: {c}. Type the whole name or the code.",
    "err.network": "The server does not answer. Try again in a moment.",
    "err.bad_request": "The details could not be accepted", "err.forbidden": "Not allowed",
    "err.unauthorized": "The certificate names no role", "err.not_found": "Not found",
    "err.conflict": "The state has changed", "err.unavailable": "Temporarily unavailable",
    "err.rate_limited": "Too many requests; wait a moment",
    "err.personal_data": "A field looks like it holds personal data",
    "err.ineligible": "The place does not fit the referral", "err.limit_reached": "The limit is reached",
    "err.outcome_unknown": "Unclear whether it went through; look at the list before retrying",
    "err.internal": "A fault in the server",
    "noaccess.text": "The certificate the browser presented names no usable role: {m}",
    "ago.s": "{n} s", "ago.m": "{n} min", "ago.h": "{n} h", "ago.d": "{n} days",
  },
};

let lang = "sv";
try {
  if (localStorage.getItem("fristad.lang") === "en") lang = "en";
} catch (e) { /* storage off: Swedish */ }

function t(key, params) {
  let s = (TEXT[lang] && TEXT[lang][key]) || TEXT.sv[key] || key;
  if (params) for (const [k, v] of Object.entries(params)) s = s.split("{" + k + "}").join(String(v));
  return s;
}

// ---- small helpers ------------------------------------------------------------------------

const $ = (id) => document.getElementById(id);

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") e.className = v;
    else if (k === "text") e.textContent = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children) if (c !== null && c !== undefined) e.append(c);
  return e;
}

const timeFmt = () => new Intl.DateTimeFormat(lang === "sv" ? "sv-SE" : "en-GB", {
  timeZone: TZ, year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit",
  minute: "2-digit", timeZoneName: "short",
});

function fmtTime(v) {
  if (v === undefined || v === null) return "";
  const d = typeof v === "number" ? new Date(v) : new Date(String(v));
  return isNaN(d) ? String(v) : timeFmt().format(d);
}

function fmtAge(s) {
  if (s < 120) return t("ago.s", { n: s });
  if (s < 7200) return t("ago.m", { n: Math.round(s / 60) });
  if (s < 172800) return t("ago.h", { n: Math.round(s / 3600) });
  return t("ago.d", { n: Math.round(s / 86400) });
}

// The offset of Stockholm at a moment, in minutes east of UTC.
function stockholmOffset(ms) {
  const parts = new Intl.DateTimeFormat("en-US", {
    timeZone: TZ, hourCycle: "h23", year: "numeric", month: "2-digit", day: "2-digit",
    hour: "2-digit", minute: "2-digit", second: "2-digit",
  }).formatToParts(new Date(ms));
  const p = Object.fromEntries(parts.map((x) => [x.type, x.value]));
  const asUtc = Date.UTC(+p.year, +p.month - 1, +p.day, +p.hour, +p.minute, +p.second);
  return Math.round((asUtc - Math.floor(ms / 1000) * 1000) / 60000);
}

// A datetime-local value ("2026-11-27T08:00") read as Swedish local time, in ms since 1970.
function localToMs(value) {
  const m = /^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d)/.exec(value || "");
  if (!m) return null;
  const naive = Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5]);
  let ms = naive - stockholmOffset(naive) * 60000;
  ms = naive - stockholmOffset(ms) * 60000;
  return ms;
}

// ---- messages -----------------------------------------------------------------------------

function say(text, isError) {
  const m = $("message");
  m.textContent = text;
  m.className = "message" + (isError ? " error" : "");
  m.hidden = false;
}

function sayError(e) {
  if (e instanceof ApiError) say(t("err." + e.code) + ": " + e.message, true);
  else say(t("err.network"), true);
}

// The server's error or a lost connection as sayError says it; a check of the form's own in its
// words.
function sayProblem(e) {
  if (e instanceof ApiError || e.message === "network") sayError(e);
  else say(e.message, true);
}

// ---- the API ------------------------------------------------------------------------------

// The server's answer when it does not carry out a request: its error code, message and HTTP
// status.
class ApiError extends Error {
  constructor(code, message, status) {
    super(message);
    this.code = code;
    this.status = status;
  }
}

async function api(op, fields) {
  let res;
  try {
    res = await fetch("/api/v1/" + op, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(fields || {}),
      credentials: "same-origin",
      cache: "no-store",
    });
  } catch (e) {
    throw new Error("network");
  }
  let body = null;
  try { body = await res.json(); } catch (e) { /* not JSON */ }
  if (!res.ok) {
    const err = (body && body.error) || { code: "internal", message: "HTTP " + res.status };
    throw new ApiError(err.code, err.message, res.status);
  }
  return body;
}

// A listing comes a page at a time: follow "next" until the last page, and join the lists.
async function apiAll(op, fields, key) {
  const all = [];
  let after = null;
  for (;;) {
    const page = await api(op, after ? Object.assign({}, fields, { after }) : fields);
    all.push(...page[key]);
    if (!page.next || page.next === after) return all;
    after = page.next;
  }
}

// ---- places -------------------------------------------------------------------------------

let places = { municipalities: [], counties: [] };
const byCode = new Map();

function fold(s) {
  return s.toLocaleLowerCase("sv").normalize("NFD").replace(/[\u0300-\u036f]/g, "").trim();
}

async function loadPlaces() {
  const r = await fetch("/places.json", { credentials: "same-origin" });
  places = await r.json();
  const list = $("municipalities");
  for (const m of places.municipalities) {
    byCode.set(m.code, m);
    list.append(el("option", { value: `${m.name} (${m.code})` }));
  }
}

function muniLabel(code) {
  const m = byCode.get(code);
  return m ? `${m.name} (${code})` : code || "";
}

// The code of a municipality typed as "Name (0180)", "0180", or a (unique start of a) name.
function muniCode(input) {
  const v = input.value.trim();
  input.removeAttribute("aria-invalid");
  if (!v) return "";
  let m = /\((\d{4})\)\s*$/.exec(v) || /^(\d{4})$/.exec(v);
  if (m && byCode.has(m[1])) return m[1];
  const f = fold(v);
  const exact = places.municipalities.filter((x) => fold(x.name) === f);
  const hits = exact.length ? exact : places.municipalities.filter((x) => fold(x.name).startsWith(f));
  if (hits.length === 1) return hits[0].code;
  input.setAttribute("aria-invalid", "true");
  input.focus();
  if (hits.length > 1)
    throw new Error(t("err.ambiguousMuni", { v, c: hits.slice(0, 4).map((x) => x.name).join(", ") }));
  throw new Error(t("err.unknownMuni", { v }));
}

// ---- language -----------------------------------------------------------------------------

function applyLanguage() {
  document.documentElement.lang = lang;
  for (const e of document.querySelectorAll("[data-i18n]")) e.textContent = t(e.dataset.i18n);
  const b = $("lang");
  b.textContent = lang === "sv" ? "English" : "Svenska";
  b.lang = lang === "sv" ? "en" : "sv";
  if (me) {
    $("who").textContent = `${t("role." + me.role)}: ${whoName()}`;
    renderAll();
  }
  setLive(liveOn);
}

$("lang").addEventListener("click", () => {
  lang = lang === "sv" ? "en" : "sv";
  try { localStorage.setItem("fristad.lang", lang); } catch (e) { /* fine */ }
  applyLanguage();
});

// ---- state --------------------------------------------------------------------------------

let me = null;            // whoami
let shelter = null;       // a shelter's own shelter (shelter.show)
let holds = [];
let placements = [];
let standing = [];
let lastSearch = null;    // {args, reply}
const knownHolds = new Set();

function whoName() {
  if (me.role === "social") return muniLabel(me.id);
  if (me.role === "shelter" && shelter) return shelter.name;
  return me.id;
}

function renderAll() {
  if (!me) return;
  if (me.role === "social" || me.role === "oncall") {
    renderResults();
    renderMyHolds();
    renderStanding();
    renderPlacements($("placements-social"), $("placements-social-empty"), false);
  } else if (me.role === "shelter") {
    renderShelter();
    renderIncoming();
    renderPlacements($("placements"), $("placements-empty"), true);
  } else if (me.role === "admin") {
    renderRegistry();
    renderAudit();
    renderStats();
  }
}

function badge(text, kind) {
  return el("span", { class: "badge " + kind, text });
}

function stateBadge(state) {
  const kind = { held: "warn", accepted: "ok", confirmed: "ok", active: "ok" }[state] || "info";
  return badge(t("state." + state), kind);
}

function dl(pairs) {
  const d = el("dl");
  for (const [k, v] of pairs) {
    if (v === undefined || v === null || v === "") continue;
    d.append(el("dt", { text: k }), el("dd", {}, v));
  }
  return d;
}

function household(h) {
  const parts = [h.adults === 1 ? t("household.one") : t("household", { a: h.adults })];
  for (const c of h.children || [])
    parts.push(t("child.desc", { sex: t("sex." + c.sex).toLowerCase(), age: c.age }));
  return parts.join(", ");
}

function needs(h) {
  const n = [];
  if (h.wheelchair) n.push(t("need.wheelchair"));
  if (h.pets) n.push(t("need.pets"));
  if (h.substance) n.push(t("need.substance"));
  if (h.language) n.push(h.language);
  for (const c of h.need || []) n.push(t("comp." + c));
  if (h.group && h.group !== "women") n.push(t("group." + h.group));
  return n.length ? n.join(", ") : t("none");
}

// ---- social services and on-call ----------------------------------------------------------

function addRow(listId, templateId) {
  const row = $(templateId).content.firstElementChild.cloneNode(true);
  for (const e of row.querySelectorAll("[data-i18n]")) e.textContent = t(e.dataset.i18n);
  row.querySelector(".remove").addEventListener("click", () => {
    row.remove();
    $(listId === "children" ? "add-child" : "add-perp").focus();
  });
  $(listId).append(row);
  row.querySelector("input").focus();
}

$("add-child").addEventListener("click", () => addRow("children", "child-row"));
$("add-perp").addEventListener("click", () => addRow("perpetrator", "muni-row"));

// The referral as the protocol takes it (search, hold and standing.add share it).
function referral() {
  const a = { home: muniCode($("home")), risk: $("risk").value };
  if (!a.home) {
    $("home").setAttribute("aria-invalid", "true");
    $("home").focus();
    throw new Error(t("err.unknownMuni", { v: "" }));
  }
  const adults = parseInt($("adults").value, 10);
  if (adults && adults !== 1) a.adults = adults;
  const children = [];
  for (const row of $("children").children) {
    const age = row.querySelector(".age");
    if (age.value === "" || isNaN(+age.value)) {
      age.setAttribute("aria-invalid", "true");
      age.focus();
      throw new Error(t("child.age") + "?");
    }
    age.removeAttribute("aria-invalid");
    children.push({ age: parseInt(age.value, 10), sex: row.querySelector(".sex").value });
  }
  if (children.length) a.children = children;
  if ($("group").value !== "women") a.group = $("group").value;
  for (const n of ["wheelchair", "pets", "substance"]) if ($(n).checked) a[n] = true;
  const language = $("language").value.trim().toLowerCase();
  if (language) a.language = language;
  const need = [...document.querySelectorAll("#competences input:checked")].map((e) => e.value);
  if (need.length) a.need = need;
  const perp = [];
  for (const row of $("perpetrator").children) {
    const code = muniCode(row.querySelector(".muni"));
    if (code && !perp.includes(code)) perp.push(code);
  }
  if (perp.length) a.perpetrator = perp;
  return a;
}

$("referral").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  let args;
  try {
    args = referral();
    const at = localToMs($("arrival").value);
    const search = Object.assign({}, args);
    if (at) search.arrival_at = at;
    const reply = await api("search", search);
    lastSearch = { args, reply };
    $("message").hidden = true;
    renderResults();
    $("h-results").scrollIntoView({ block: "start" });
  } catch (e) {
    sayProblem(e);
  }
});

function renderResults() {
  if (!lastSearch) return;
  $("results-section").hidden = false;
  const { reply } = lastSearch;
  const list = $("results");
  list.replaceChildren();
  const n = reply.results.length;
  $("results-summary").textContent = n === 1 ? t("results.one") : n ? t("results.count", { n }) : "";
  for (const r of reply.results) {
    const fresh = r.stale ? badge(t("stale"), "bad") : badge(t("fresh"), "ok");
    const receives = r.receives_from ? t("results.receivesFrom", { t: fmtTime(r.receives_from) })
      : t("results.receivesNow");
    list.append(el("li", { class: "card" },
      el("h3", { text: r.name }),
      el("p", {}, fresh, " ", t("age", { a: fmtAge(r.data_age_s) })),
      dl([
        [t("col.municipality"), muniLabel(r.municipality)],
        [t("col.distance"), t("km", { n: r.distance_km })],
        [t("col.unit"), r.unit],
        [t("col.beds"), String(r.beds)],
        [t("col.protection"), String(r.protection)],
        [t("col.state"), receives],
      ]),
      el("div", { class: "actions" },
        el("button", { type: "button", class: "hold", "data-shelter": r.shelter, "data-unit": r.unit,
          "aria-label": `${t("results.hold")} ${r.name} ${r.unit}`, text: t("results.hold"),
          onclick: () => hold(r) }))));
  }
  const none = n === 0;
  $("nomatch").hidden = !none;
  if (none) {
    const reasons = $("reasons");
    reasons.replaceChildren();
    const counted = Object.entries(reply.ruled_out).filter(([, c]) => c > 0);
    $("results-summary").textContent = counted.length ? t("results.none") : t("results.noneAtAll");
    for (const [reason, count] of counted)
      reasons.append(el("li", { text: `${t("reason." + reason)}: ${count}` }));
  }
}

function holdExtras(args) {
  const ref = $("ref").value.trim();
  if (!ref) {
    $("ref").setAttribute("aria-invalid", "true");
    $("ref").focus();
    throw new Error(t("holds.needRef"));
  }
  $("ref").removeAttribute("aria-invalid");
  const a = Object.assign({}, args, { ref });
  const cb = $("callback").value.trim();
  if (cb) a.callback = cb;
  if (me.role === "oncall" && $("for").value.trim()) a.municipality = muniCode($("for"));
  return a;
}

async function hold(r) {
  try {
    const a = holdExtras(lastSearch.args);
    a.shelter = r.shelter;
    a.unit = r.unit;
    const res = await api("hold", a);
    say(t("holds.held", { s: r.name, u: res.unit, p: res.phone || "" }));
    lastSearch.reply.results = lastSearch.reply.results.filter(
      (x) => !(x.shelter === r.shelter && x.unit === r.unit));
    renderResults();
    await refreshHolds();
  } catch (e) {
    sayProblem(e);
  }
}

$("stand").addEventListener("click", async () => {
  try {
    const a = holdExtras(lastSearch.args);
    delete a.callback;
    await api("standing.add", a);
    say(t("standing.added"));
    await refreshStanding();
  } catch (e) {
    sayProblem(e);
  }
});

function renderMyHolds() {
  const list = $("my-holds");
  list.replaceChildren();
  const open = holds.filter((h) => h.state === "held" || h.state === "accepted" || h.state === "confirmed"
    || Date.now() - (h.closed_at || 0) < 3600e3);
  $("my-holds-empty").hidden = open.length > 0;
  for (const h of open) {
    const actions = el("div", { class: "actions" });
    if (h.state === "held" || h.state === "accepted")
      actions.append(el("button", { type: "button", class: "danger", text: t("holds.release"),
        onclick: () => act("hold.release", { hold: h.hold }) }));
    list.append(el("li", { class: "card", "data-hold": h.hold, "data-state": h.state },
      el("h3", { text: `${h.shelter} · ${h.unit}` }),
      el("p", {}, stateBadge(h.state)),
      dl([
        [t("col.ref"), h.ref],
        [t("col.household"), household(h)],
        [t("col.municipality"), muniLabel(h.municipality)],
        [t("col.expires"), h.state === "held" || h.state === "accepted" ? fmtTime(h.expires_at) : ""],
        [t("shelter.declineReason"), h.reason ? t("decline." + h.reason) : ""],
      ]), actions));
  }
}

function renderStanding() {
  const list = $("standing");
  list.replaceChildren();
  $("standing-empty").hidden = standing.length > 0;
  for (const s of standing) {
    const actions = el("div", { class: "actions" });
    if (s.state === "active")
      actions.append(el("button", { type: "button", class: "secondary", text: t("standing.cancel"),
        onclick: () => act("standing.cancel", { standing: s.standing }) }));
    list.append(el("li", { class: "card" },
      el("h3", { text: s.ref }), el("p", {}, stateBadge(s.state)),
      dl([[t("col.matches"), String(s.matches)], [t("col.expires"), fmtTime(s.expires_at)]]),
      actions));
  }
}

function renderPlacements(list, empty, mayDischarge) {
  list.replaceChildren();
  empty.hidden = placements.length > 0;
  for (const p of placements) {
    const actions = el("div", { class: "actions" });
    if (mayDischarge && p.state === "active")
      actions.append(el("button", { type: "button", class: "secondary", text: t("shelter.discharge"),
        onclick: () => act("placement.discharge", { placement: p.placement }) }));
    list.append(el("li", { class: "card" },
      el("h3", { text: `${p.shelter} · ${p.unit}` }), el("p", {}, stateBadge(p.state)),
      dl([[t("col.ref"), p.ref], [t("col.household"), household(p)],
        [t("col.placed"), fmtTime(p.placed_at)]]), actions));
  }
}

async function act(op, fields) {
  try {
    await api(op, fields);
    await refresh();
  } catch (e) {
    sayError(e);
  }
}

// ---- shelter staff ------------------------------------------------------------------------

function renderShelter() {
  if (!shelter) return;
  $("h-shelter").textContent = `${shelter.name} – ${muniLabel(shelter.municipality)}`;
  const state = [shelter.paused ? t("shelter.paused") : t("shelter.open"), " ",
    shelter.stale ? badge(t("stale"), "bad") : badge(t("fresh"), "ok"), " ",
    t("shelter.updated", { t: fmtTime(shelter.updated_at) })];
  $("shelter-state").replaceChildren(...state);
  $("pause").textContent = shelter.paused ? t("shelter.resume") : t("shelter.pause");
  const list = $("units");
  const focused = document.activeElement && document.activeElement.name;
  list.replaceChildren();
  for (const u of shelter.units) {
    const name = "vac-" + u.id;
    const sw = el("fieldset", { class: "switch" }, el("legend", { text: `${t("col.unit")} ${u.id}` }));
    for (const v of ["free", "occupied", "closed"]) {
      const input = el("input", { type: "radio", name, value: v, checked: u.state === v,
        disabled: u.held || undefined });
      input.addEventListener("change", () => setVacancy(u.id, v));
      sw.append(el("label", {}, input, el("span", { text: t("vac." + v) })));
    }
    list.append(el("li", { class: "unit", "data-unit": u.id },
      el("span", { class: "name", text: `${u.id}` }),
      el("span", { text: `${u.beds} ${t("col.beds").toLowerCase()}${u.accessible ? " · ♿" : ""}` }),
      sw, u.held ? badge(t("shelter.heldUnit"), "warn") : null));
  }
  if (focused) {
    const again = list.querySelector(`input[name="${focused}"]:checked`);
    if (again) again.focus();
  }
}

async function setVacancy(unit, state) {
  try {
    const res = await api("vacancy.set", { shelter: me.id, unit, state });
    shelter = res.shelter;
    renderShelter();
  } catch (e) {
    sayError(e);
    await refresh();
  }
}

$("confirm-vacancies").addEventListener("click", async () => {
  try {
    shelter = (await api("vacancy.confirm", { shelter: me.id })).shelter;
    renderShelter();
    say(t("shelter.confirmed"));
  } catch (e) { sayError(e); }
});

$("pause").addEventListener("click", async () => {
  try {
    shelter = (await api(shelter.paused ? "intake.resume" : "intake.pause", { shelter: me.id })).shelter;
    renderShelter();
  } catch (e) { sayError(e); }
});

function renderIncoming() {
  const list = $("incoming");
  list.replaceChildren();
  const open = holds.filter((h) => h.state === "held" || h.state === "accepted");
  $("incoming-empty").hidden = open.length > 0;
  for (const h of open) {
    const actions = el("div", { class: "actions" });
    if (h.state === "held") {
      const arrival = el("input", { type: "datetime-local", id: "arr-" + h.hold });
      actions.append(
        el("label", { for: "arr-" + h.hold, class: "hint", text: t("shelter.arrivalBy") }), arrival,
        el("button", { type: "button", class: "accept", text: t("shelter.accept"), onclick: () => {
          const f = { hold: h.hold };
          const ms = localToMs(arrival.value);
          if (ms) f.arrival_by = ms;
          act("hold.accept", f);
        } }));
    }
    actions.append(el("button", { type: "button", class: "arrived secondary", text: t("shelter.arrived"),
      onclick: () => act("hold.confirm", { hold: h.hold }) }));
    const reason = el("select", { id: "why-" + h.hold });
    for (const r of ["no_room", "household", "needs", "safety", "staffing", "other"])
      reason.append(el("option", { value: r, text: t("decline." + r) }));
    const note = el("input", { id: "note-" + h.hold, maxlength: "200", autocomplete: "off" });
    const decline = el("details", {}, el("summary", { text: t("shelter.decline") }),
      el("div", { class: "grid" },
        el("div", { class: "field" }, el("label", { for: "why-" + h.hold, text: t("shelter.declineReason") }), reason),
        el("div", { class: "field" }, el("label", { for: "note-" + h.hold, text: t("shelter.note") }), note),
        el("div", { class: "field" }, el("button", { type: "button", class: "danger", text: t("shelter.decline"),
          onclick: () => {
            const f = { hold: h.hold, reason: reason.value };
            if (note.value.trim()) f.note = note.value.trim();
            act("hold.decline", f);
          } }))));
    list.append(el("li", { class: "card" + (h.state === "held" ? " new" : ""), "data-hold": h.hold,
      "data-state": h.state },
      el("h3", { text: `${t("col.unit")} ${h.unit}` }), el("p", {}, stateBadge(h.state)),
      dl([
        [t("col.household"), household(h)], [t("col.needs"), needs(h)],
        [t("col.risk"), t("risk." + h.risk)], [t("col.callback"), h.callback || ""],
        [t("col.ref"), h.ref], [t("col.expires"), fmtTime(h.expires_at)],
      ]), actions, decline));
  }
}

// A new hold on one of our units: seen and heard, without a reload.
function alertNewHold(h) {
  const a = $("alert");
  a.textContent = t("shelter.newHold", { u: h.unit });
  a.className = "alert new-hold";
  a.hidden = false;
  beep();
  document.title = "● Fristad";
  setTimeout(() => { document.title = "Fristad"; }, 15000);
}

let audio = null;
function beep() {
  try {
    audio = audio || new (window.AudioContext || window.webkitAudioContext)();
    const now = audio.currentTime;
    for (const [i, f] of [[0, 880], [1, 660], [2, 880]]) {
      const o = audio.createOscillator();
      const g = audio.createGain();
      o.frequency.value = f;
      g.gain.setValueAtTime(0.25, now + i * 0.25);
      g.gain.exponentialRampToValueAtTime(0.001, now + i * 0.25 + 0.22);
      o.connect(g).connect(audio.destination);
      o.start(now + i * 0.25);
      o.stop(now + i * 0.25 + 0.23);
    }
  } catch (e) { /* no sound here: the banner still shows */ }
}
// Browsers allow sound only after the person has interacted with the page once.
document.addEventListener("click", () => {
  try {
    if (!audio) audio = new (window.AudioContext || window.webkitAudioContext)();
    if (audio.state === "suspended") audio.resume();
  } catch (e) { /* fine */ }
}, { once: true });

// ---- admin --------------------------------------------------------------------------------

let registry = [];
let audit = [];
let stats = null;

function renderRegistry() {
  const body = $("registry").tBodies[0];
  body.replaceChildren();
  for (const s of registry) {
    const state = [s.stale ? t("stale") : t("fresh")];
    if (s.paused) state.push(t("admin.paused"));
    body.append(el("tr", {},
      el("td", {}, el("strong", { text: s.name }), el("br"), el("span", { class: "hint", text: s.id })),
      el("td", { text: muniLabel(s.municipality) }), el("td", { text: String(s.protection) }),
      el("td", { text: `${s.units} (${s.free_units})` }), el("td", { text: state.join(", ") })));
  }
}

function renderAudit() {
  const body = $("audit").tBodies[0];
  body.replaceChildren();
  for (const e of audit) {
    const target = [e.shelter, e.unit, e.hold, e.placement].filter(Boolean).join(" ");
    body.append(el("tr", {}, el("td", { text: fmtTime(e.at) }), el("td", { text: e.principal }),
      el("td", { text: e.op }), el("td", { text: e.result }), el("td", { text: target })));
  }
}

function renderStats() {
  const d = $("stats");
  d.replaceChildren();
  if (!stats) return;
  const row = (k, v) => d.append(el("dt", { text: k }), el("dd", { text: v }));
  row(t("stats.searches"), String(stats.searches));
  row(t("stats.no_match"), String(stats.no_match));
  const map = (o, prefix) => Object.entries(o || {}).filter(([, v]) => v > 0)
    .map(([k, v]) => `${prefix ? t(prefix + k) : k}: ${v}`).join(", ") || t("none");
  row(t("stats.ruled_out"), map(stats.ruled_out, "reason."));
  row(t("stats.holds"), map(stats.holds, "count."));
  row(t("stats.declines"), map(stats.declines, "decline."));
  row(t("stats.placements"), map(stats.placements, "count."));
  row(t("stats.standing"), map(stats.standing, "count."));
}

$("audit-filter").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  await loadAudit();
});

async function loadAudit() {
  const f = {};
  const since = localToMs($("au-since").value);
  if (since) f.since = since;
  if ($("au-principal").value.trim()) f.principal = $("au-principal").value.trim();
  if ($("au-shelter").value.trim()) f.shelter = $("au-shelter").value.trim();
  const limit = parseInt($("au-limit").value, 10);
  if (limit) f.limit = limit;
  try {
    audit = (await api("audit", f)).entries.slice().reverse(); // newest first
    renderAudit();
  } catch (e) { sayError(e); }
}

// Operator, IVO permit and competences, as shelter.add takes them; empty fields are left out.
function practice() {
  const f = {};
  if ($("sa-operator").value) f.operator = $("sa-operator").value;
  const permit = $("sa-permit").value.trim();
  if (permit) f.ivo_permit = permit;
  if ($("sa-permit-date").value) f.ivo_permit_date = $("sa-permit-date").value;
  if ($("sa-registered").checked) f.ivo_registered = true;
  const comps = [...document.querySelectorAll("#sa-competences input:checked")].map((e) => e.value);
  if (comps.length) f.competences = comps;
  return f;
}

$("shelter-add").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  try {
    await api("shelter.add", {
      shelter: $("sa-id").value.trim(), name: $("sa-name").value.trim(), kind: $("sa-kind").value,
      municipality: muniCode($("sa-mun")), protection: parseInt($("sa-prot").value, 10),
      phone: $("sa-phone").value.trim(), ...practice(),
    });
    say(t("admin.saved"));
    await refresh();
  } catch (e) {
    sayProblem(e);
  }
});

$("unit-add").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  try {
    const f = { shelter: $("ua-shelter").value.trim(), unit: $("ua-unit").value.trim(),
      beds: parseInt($("ua-beds").value, 10) };
    if ($("ua-acc").checked) f.accessible = true;
    await api("unit.add", f);
    say(t("admin.saved"));
    await refresh();
  } catch (e) { sayError(e); }
});

// ---- loading and live updates ---------------------------------------------------------------

let holdsAsked = 0;

async function refreshHolds() {
  // A refresh takes a request per page: one that an event started later may finish first, and
  // what it shows must not be overwritten by the older one.
  const asked = ++holdsAsked;
  const lists = await Promise.all([apiAll("holds.list", {}, "holds"),
                                   apiAll("placements.list", {}, "placements")]);
  if (asked !== holdsAsked) return;
  [holds, placements] = lists;
  if (me.role === "shelter") {
    for (const x of holds) {
      if (x.state === "held" && !knownHolds.has(x.hold) && started)
        alertNewHold(x);
      knownHolds.add(x.hold);
    }
    renderIncoming();
    renderPlacements($("placements"), $("placements-empty"), true);
  } else {
    renderMyHolds();
    renderPlacements($("placements-social"), $("placements-social-empty"), false);
  }
}

async function refreshStanding() {
  standing = (await api("standing.list")).standing;
  renderStanding();
}

let started = false;

async function refresh() {
  try {
    if (me.role === "shelter") {
      shelter = (await api("shelter.show", { shelter: me.id })).shelter;
      renderShelter();
      await refreshHolds();
    } else if (me.role === "social" || me.role === "oncall") {
      await Promise.all([refreshHolds(), refreshStanding()]);
    } else if (me.role === "admin") {
      const [list, st] = await Promise.all([apiAll("shelter.list", {}, "shelters"), api("stats")]);
      registry = list;
      stats = st;
      renderRegistry();
      renderStats();
    }
  } catch (e) {
    sayError(e);
  }
}

let liveOn = false;
function setLive(on) {
  liveOn = on;
  $("live").textContent = me ? (on ? t("live.on") : t("live.off")) : "";
  document.body.dataset.live = on ? "on" : "off";
}

let pending = null;
function refreshSoon() {
  if (pending) return;
  pending = setTimeout(async () => { pending = null; await refresh(); }, 150);
}

function watch() {
  const src = new EventSource("/api/v1/watch");
  src.addEventListener("watching", () => setLive(true));
  src.addEventListener("message", (m) => {
    let e;
    try { e = JSON.parse(m.data); } catch (x) { return; }
    if (e.type === "match")
      say(t("standing.match", { s: e.shelter, u: e.unit }));
    refreshSoon();
  });
  src.addEventListener("ended", (m) => {
    // The stream ended with an error (the log no longer reaches back, or the server is busy):
    // look at the current state and watch anew from now.
    src.close();
    setLive(false);
    let code = "";
    try { code = JSON.parse(m.data).error.code; } catch (x) { /* fine */ }
    setTimeout(() => { refresh(); watch(); }, code === "gone" ? 0 : 3000);
  });
  src.addEventListener("error", () => {
    setLive(false);
    if (src.readyState === EventSource.CLOSED) setTimeout(watch, 5000);
  });
}

// The specialist competences, in the protocol's order: the referral's needs and the admin's
// registration offer the same boxes.
const COMPETENCES = ["hbv", "psychiatric", "npf", "intellectual_disability", "deaf", "interpreter"];
for (const box of document.querySelectorAll("[data-competences]"))
  for (const c of COMPETENCES)
    box.append(el("label", {}, el("input", { type: "checkbox", value: c }), " ",
      el("span", { "data-i18n": "comp." + c })));

async function start() {
  applyLanguage();
  try {
    await loadPlaces();
    me = await api("whoami");
  } catch (e) {
    $("loading").hidden = true;
    $("noaccess").hidden = false;
    $("noaccess-text").textContent = e instanceof ApiError ? t("noaccess.text", { m: e.message })
      : t("err.network");
    return;
  }
  $("loading").hidden = true;
  const view = me.role === "oncall" ? "social" : me.role;
  $("view-" + view).hidden = false;
  if (me.role === "oncall") $("for-field").hidden = false;
  if (me.role === "social") $("home").value = muniLabel(me.id);
  await refresh();
  if (me.role === "admin") await loadAudit();
  started = true;
  applyLanguage();
  watch();
  document.body.dataset.ready = "true";
}

start();
