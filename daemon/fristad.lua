#!lua name=fristad
--[[
Fristad's store: every write is one of these functions, executed atomically by Redis.

Calling convention: FCALL fristad_<op> 1 "<prefix>ver" <envelope>, where the envelope is one
msgpack map:
  caller               the principal "role:id" (the daemon has already checked its role)
  person               who holds the certificate (an HSA-id, or "sha256:" and its
                       fingerprint); absent for the daemon's own work, which is audited by
                       its caller name
  area                 for an on-call caller: the municipality codes of its agreement,
                       comma-separated ("" for none); it sees and releases holds and
                       placements of these municipalities alone
  op                   the protocol op, as on the wire ("hold", "hold.release", ...)
  quiet_refusal        true: a refusal is not audited here; the daemon counts it into the
                       summary of its person's refusals (daemon/refusals.h)
  audit_retention      ms an audit entry is kept
  reference_retention  ms a closed record keeps its referral reference
  args                 the request's fields, named as on the wire (proto/PROTOCOL.md section 4),
                       plus what the daemon adds (a new hold or placement id, a hold time)
Every key is derived from the prefix (all keys share one hash tag).

Every write is wrapped by write(): it sweeps expired holds, runs the op's own body, and then does
what every change shares. A body reads and checks every precondition (existence, ownership,
state) before its first write, because Redis rolls nothing back, and returns either
no(code, message, target) or {result = ..., shelter = id of the changed shelter, target = ...}.
Role checks are the daemon's (daemon/ops.c); what only Redis can see (whose hold it is, whether
the unit is free) is checked here. A function answers one msgpack map: {result = ...} plus
snapshot = the changed shelter, or {error = code, message = text}.

One vocabulary from the wire to the hash to the index: a hash field has its protocol name.
Key layout under the prefix P:
  ver                     global version, INCR on every change to a shelter
  schema                  layout version of the records (2: fields named as on the wire)
  shelters                set of shelter ids (retired ones too)
  s:<sid>                 hash: name kind municipality protection phone groups max_children
                                boys_max_age pets substance languages intake_hours paused
                                retired updated_at created_at version [competences]
                                [operator] [ivo_permit ivo_permit_date] [ivo_registered]
                                [profile_version] (the version of the last change of what it
                                takes or of a unit's beds or access)
                          (a shelter registered before the bracketed fields existed lacks
                          them: no competences, operator unknown, no permit)
  u:<sid>                 set of unit ids of the shelter
  unit:<sid>:<uid>        hash: beds accessible state changed_at [hold] [placement]
  hold:<hid>              hash: shelter unit ref by municipality state created_at expires_at
                                risk adults children group wheelchair pets substance
                                [language] [callback] [accepted_at] [closed_at] [reason]
                                [note] [placement] [idempotency_key] [need] [child_basis]
                          state: held -> accepted -> confirmed, or declined, released, expired
  holds:by:<principal>    set of the principal's open (held or accepted) hold ids
  holds, holds:s:<sid>, holds:m:<mun>   zsets of hold ids by creation time
  holds:open              zset of live hold ids by expiry time
  pl:<pid>                hash: hold shelter unit ref by municipality state placed_at
                                risk adults children group [need] [child_basis]
                                [discharged_at]
  pls, pls:s:<sid>, pls:m:<mun>         zsets of placement ids by placement time
  purge                   zset "h:<hid>" / "p:<pid>" / "s:<id>" by the time its record goes
  purge_gen               counter: sweeps that deleted records (whose writes the AOF still has)
  rewritten_gen           the purge_gen that the last completed AOF rewrite took off the disk
  idem:<principal>:<key>  "<hid>|<digest of the request>", 24 h
  fu:<YYYY-MM>:<mun>      hash of follow-up counters of a month (Swedish local time) and a
                          responsible municipality, kept for ever: searches no_match
                          no_match:<reason> holds acceptances declines:<code> expiries
                          placements discharges children:<band> nights, and histograms of
                          whole minutes to_acceptance:<min> to_arrival:<min>
  fu:<YYYY-MM>            set of the municipalities with follow-up counters that month
  searchbatch:<daemon>    the last batch of search counts added from that daemon run, 7 days
  holds:escalate          zset of held hold ids by the time of their next escalation step
  st:<id>                 hash of a standing search: by municipality ref referral (packed)
                                state created_at expires_at matches [closed_at]
  standing                zset of active standing search ids by expiry
  standing:by:<principal>, standing:m:<mun>   its active ones / all by creation time
  stm:<st>:<sid>:<uid>:<v>  "a match was sent": one per standing search, unit and version
  stats                   hash of counters that outlive the records, among them
                          children:<basis>:<age band> for the children placed
  retention               "archive" once a daemon archived into this store: from then on no
                          daemon deletes a record it has not archived
  audit                   stream of audit entries
  log                     stream of events for people (watch): type at and the ids it concerns,
                          never a reference, callback or phone; trimmed by age and length
  log:floor               the first event left after the last trim: the log is whole from it
  events                  pub/sub channel of {version, shelter} snapshots
  snap:<sid>              the shelter's last published {version, shelter}, packed, after the
                          library's SNAPSHOT_TAG: what a starting daemon loads, a page at a time
                          (daemon/events.c reads these and `shelters` with plain commands)
]]

local SWEEP_BATCH = 100
local IDEM_TTL_S = 86400
local SCHEMA = 2
-- Which library stored a snapshot: the build puts a digest of this file here (daemon/embed.py),
-- so a snapshot made by another version of snapshot() is made anew rather than trusted.
local SNAPSHOT_TAG = '@SOURCE_DIGEST@'

local function now_ms()
    local t = redis.call('TIME')
    return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local function hgetall(key)
    local flat = redis.call('HGETALL', key)
    local t = {}
    for i = 1, #flat, 2 do
        t[flat[i]] = flat[i + 1]
    end
    return t
end

local function split(list)
    local out = {}
    for item in string.gmatch(list or '', '[^,]+') do
        out[#out + 1] = item
    end
    return out
end

-- The call's context and its arguments.
local function ctx(keys, argv)
    local e = cmsgpack.unpack(argv[1])
    local c = {}
    c.P = string.sub(keys[1], 1, -4)
    c.now = now_ms()
    c.who = e.caller
    c.person = e.person or e.caller
    c.role, c.id = string.match(e.caller, '^([^:]+):(.+)$')
    c.op = e.op
    c.quiet_refusal = e.quiet_refusal == true
    if e.area then
        c.area = {}
        for code in string.gmatch(e.area, '[^,]+') do
            c.area[code] = true
        end
    end
    c.audit_ret = tonumber(e.audit_retention) or 0
    c.ref_ret = tonumber(e.reference_retention) or 0
    c.event_ret = tonumber(e.event_retention) or 86400000
    return c, e.args or {}
end

-- The fields an event may carry: ids and states, never a reference, callback or phone.
local EVENT_KEYS = {'shelter', 'unit', 'hold', 'placement', 'municipality', 'by', 'state', 'step',
                    'standing'}

-- Appends an event for people to the event log; its stream id is its sequence. The sweep trims
-- the log (trim_log), so that it knows from where on it is whole.
local function emit(c, etype, fields)
    local entry = {'XADD', c.P .. 'log', '*', 'type', etype, 'at', c.now}
    for _, k in ipairs(EVENT_KEYS) do
        local v = fields[k]
        if v ~= nil and v ~= '' then
            entry[#entry + 1] = k
            entry[#entry + 1] = v
        end
    end
    redis.call(unpack(entry))
end

-- What an event says about a hold: which unit, for whom.
local function hold_event(hid, h, extra)
    local f = {shelter = h.shelter, unit = h.unit, hold = hid, municipality = h.municipality,
               by = h.by}
    for k, v in pairs(extra or {}) do f[k] = v end
    return f
end

-- What an entry may say besides who, what and the result; `count` is the number of refusals an
-- entry of op "refusals" stands for.
local TARGET_KEYS = {'shelter', 'unit', 'hold', 'placement', 'phone', 'count'}

local function audit(c, op, result, target)
    local entry = {'XADD', c.P .. 'audit', 'MINID', '~', tostring(c.now - c.audit_ret), '*',
                   'principal', c.who, 'person', c.person or c.who, 'op', op, 'result', result}
    if target then
        for _, k in ipairs(TARGET_KEYS) do
            if target[k] and target[k] ~= '' then
                entry[#entry + 1] = k
                entry[#entry + 1] = target[k]
            end
        end
    end
    redis.call(unpack(entry))
end

-- A refusal: nothing has been written.
local function no(code, message, target)
    return {error = code, message = message, target = target}
end

local function snapshot(c, sid)
    local h = hgetall(c.P .. 's:' .. sid)
    local ids = redis.call('SMEMBERS', c.P .. 'u:' .. sid)
    table.sort(ids)
    local units = {}
    for _, uid in ipairs(ids) do
        local u = hgetall(c.P .. 'unit:' .. sid .. ':' .. uid)
        units[#units + 1] = {
            id = uid, beds = tonumber(u.beds), accessible = u.accessible == '1', state = u.state,
            held = u.hold ~= nil, placed = u.placement ~= nil,
        }
    end
    return {
        id = sid, name = h.name, kind = h.kind, municipality = h.municipality,
        protection = tonumber(h.protection), phone = h.phone, groups = split(h.groups),
        max_children = tonumber(h.max_children), boys_max_age = tonumber(h.boys_max_age),
        pets = h.pets == '1', substance = h.substance == '1', languages = split(h.languages),
        intake_hours = h.intake_hours or '24/7',
        competences = split(h.competences), operator = h.operator, ivo_permit = h.ivo_permit,
        ivo_permit_date = h.ivo_permit_date, ivo_registered = h.ivo_registered == '1',
        paused = h.paused == '1', retired = h.retired == '1', updated_at = tonumber(h.updated_at),
        version = tonumber(h.version), units = units,
    }
end

-- Bumps the version, publishes the shelter's snapshot, keeps it for loading, and returns it.
local function changed(c, sid)
    local v = redis.call('INCR', c.P .. 'ver')
    redis.call('HSET', c.P .. 's:' .. sid, 'version', v)
    local snap = snapshot(c, sid)
    local packed = cmsgpack.pack({version = v, shelter = snap})
    redis.call('PUBLISH', c.P .. 'events', packed)
    redis.call('SET', c.P .. 'snap:' .. sid, SNAPSHOT_TAG .. packed)
    return snap
end

local function stat(c, field)
    redis.call('HINCRBY', c.P .. 'stats', field, 1)
end

------------------------------------------------------------------------------------------
-- Follow-up counts: by month in Swedish local time and by responsible municipality, added in
-- the same atomic step as the write they count, and kept for ever (counts, never records).

-- Days since 1970-01-01 of a date of the Gregorian calendar, and back.
local function days_from_civil(y, m, d)
    if m <= 2 then y = y - 1 end
    local era = math.floor(y / 400)
    local yoe = y - era * 400
    local doy = math.floor((153 * ((m + 9) % 12) + 2) / 5) + d - 1
    local doe = yoe * 365 + math.floor(yoe / 4) - math.floor(yoe / 100) + doy
    return era * 146097 + doe - 719468
end

local function civil_from_days(z)
    z = z + 719468
    local era = math.floor(z / 146097)
    local doe = z - era * 146097
    local yoe = math.floor((doe - math.floor(doe / 1460) + math.floor(doe / 36524) -
                            math.floor(doe / 146096)) / 365)
    local doy = doe - (365 * yoe + math.floor(yoe / 4) - math.floor(yoe / 100))
    local mp = math.floor((5 * doy + 2) / 153)
    local d = doy - math.floor((153 * mp + 2) / 5) + 1
    local m = mp < 10 and mp + 3 or mp - 9
    local y = yoe + era * 400
    if m <= 2 then y = y + 1 end
    return y, m, d
end

-- 01:00 UTC on the last Sunday of March or October: where EU summer time begins and ends.
-- 1970-01-01 was a Thursday, so a day d is a Sunday when (d + 4) % 7 == 0.
local function summer_time_edge(y, m)
    local last = days_from_civil(y, m, 31)
    return (last - (last + 4) % 7) * 86400000 + 3600000
end

-- A moment (ms since 1970) on the clock of Stockholm: CET, CEST from the last Sunday of March
-- to the last Sunday of October. Redis Lua has no time zones; the rule is the EU's since 1996.
local function stockholm_ms(ms)
    local y = civil_from_days(math.floor(ms / 86400000))
    if ms >= summer_time_edge(y, 3) and ms < summer_time_edge(y, 10) then
        return ms + 7200000
    end
    return ms + 3600000
end

local function stockholm_day(ms)
    return math.floor(stockholm_ms(ms) / 86400000)
end

local function stockholm_month(ms)
    local y, m = civil_from_days(stockholm_day(ms))
    return string.format('%04d-%02d', y, m)
end

-- Minutes in a histogram of follow-up; a week and more counts as a week.
local MINUTES_MAX = 10080

local function minutes_since(c, ms)
    return math.min(MINUTES_MAX, math.max(0, math.floor((c.now - tonumber(ms)) / 60000)))
end

-- Adds n (default 1) to a follow-up counter of the responsible municipality this month.
local function follow(c, mun, field, n)
    if not mun or mun == '' then return end
    c.month = c.month or stockholm_month(c.now)
    redis.call('HINCRBY', c.P .. 'fu:' .. c.month .. ':' .. mun, field, n or 1)
    redis.call('SADD', c.P .. 'fu:' .. c.month, mun)
end

-- The age band a placed child is counted in.
local function age_band(age)
    if age <= 6 then return '0-6' end
    if age <= 12 then return '7-12' end
    return '13-17'
end

local function stat_by(c, field, n)
    if n > 0 then redis.call('HINCRBY', c.P .. 'stats', field, n) end
end

-- Closes a live hold: its unit is no longer reserved by it.
local function close_hold(c, hid, h, state, extra)
    local hk = c.P .. 'hold:' .. hid
    redis.call('HSET', hk, 'state', state, 'closed_at', c.now)
    if extra then
        for k, v in pairs(extra) do
            redis.call('HSET', hk, k, v)
        end
    end
    redis.call('ZREM', c.P .. 'holds:open', hid)
    redis.call('ZREM', c.P .. 'holds:escalate', hid)
    redis.call('SREM', c.P .. 'holds:by:' .. h.by, hid)
    emit(c, state, hold_event(hid, h, extra and {placement = extra.placement}))
    local uk = c.P .. 'unit:' .. h.shelter .. ':' .. h.unit
    if redis.call('HGET', uk, 'hold') == hid then
        redis.call('HDEL', uk, 'hold')
    end
    redis.call('ZADD', c.P .. 'purge', c.now + c.ref_ret, 'h:' .. hid)
    stat(c, 'holds:' .. state)
end

-- Expires one live hold whose time has passed.
local function expire(c, hid, h)
    local system = {P = c.P, now = c.now, who = 'system:sweep', person = 'system:sweep',
                    audit_ret = c.audit_ret, ref_ret = c.ref_ret, event_ret = c.event_ret}
    close_hold(system, hid, h, 'expired')
    follow(system, h.municipality, 'expiries')
    changed(system, h.shelter)
    audit(system, 'hold.expire', 'ok', {shelter = h.shelter, unit = h.unit, hold = hid})
end

-- A hold keeps its unit while it is held (waiting for the shelter) or accepted (the household
-- is on its way); either ends at expires_at.
local OPEN = {held = true, accepted = true}

local function past_expiry(c, h)
    return OPEN[h.state] and tonumber(h.expires_at) <= c.now
end

-- Expires every hold whose time has come, at most `limit` of them per call. A function that
-- meets a hold the sweep has not reached yet expires it itself (past_expiry), so the batch
-- limit never lets a hold outlive its time.
local function sweep(c, limit)
    local due = redis.call('ZRANGEBYSCORE', c.P .. 'holds:open', '-inf', c.now, 'LIMIT', 0, limit)
    for _, hid in ipairs(due) do
        local h = hgetall(c.P .. 'hold:' .. hid)
        if h.shelter and OPEN[h.state] then
            expire(c, hid, h)
        else
            redis.call('ZREM', c.P .. 'holds:open', hid)
        end
    end
    return #due
end

-- The hold on a unit that still counts: a hold past its expiry is expired here and then.
local function live_hold(c, uk)
    local hid = redis.call('HGET', uk, 'hold')
    if not hid then
        return nil
    end
    local h = hgetall(c.P .. 'hold:' .. hid)
    if h.shelter and past_expiry(c, h) then
        expire(c, hid, h)
        return nil
    end
    return hid
end

-- The household as a hold or placement keeps it: adults, each child's age and sex, and needs.
-- Where the household lives and where the perpetrator is are never stored.
local function children_text(children)
    local out = {}
    for _, child in ipairs(children or {}) do
        out[#out + 1] = tostring(child.age) .. child.sex
    end
    return table.concat(out, ',')
end

local function children_list(text)
    local out = {}
    for age, sex in string.gmatch(text or '', '(%d+)([mf])') do
        out[#out + 1] = {age = tonumber(age), sex = sex}
    end
    return out
end

-- Each child's basis, in the order of the children ("sol,lvu"), where one was recorded.
local function add_bases(children, text)
    local bases = split(text)
    if #bases ~= #children then return end
    for i, child in ipairs(children) do
        child.basis = bases[i]
    end
end

local function household_view(v, r)
    if r.risk then v.risk = r.risk end
    if r.adults then v.adults = tonumber(r.adults) end
    v.children = children_list(r.children)
    add_bases(v.children, r.child_basis)
    if r.need and r.need ~= '' then v.need = split(r.need) end
    if r.group then v.group = r.group end
    if r.wheelchair then v.wheelchair = r.wheelchair == '1' end
    if r.pets then v.pets = r.pets == '1' end
    if r.substance then v.substance = r.substance == '1' end
    if r.language then v.language = r.language end
    return v
end

local function hold_view(c, hid, h)
    local state = h.state
    if OPEN[state] and tonumber(h.expires_at) <= c.now then
        state = 'expired'
    end
    local v = {
        hold = hid, shelter = h.shelter, unit = h.unit, ref = h.ref, by = h.by, state = state,
        created_at = tonumber(h.created_at), expires_at = tonumber(h.expires_at),
    }
    if h.municipality and h.municipality ~= '' then v.municipality = h.municipality end
    if h.callback then v.callback = h.callback end
    if h.accepted_at then v.accepted_at = tonumber(h.accepted_at) end
    if h.closed_at then v.closed_at = tonumber(h.closed_at) end
    if h.reason then v.reason = h.reason end
    if h.note then v.note = h.note end
    if h.placement then v.placement = h.placement end
    return household_view(v, h)
end

local function placement_view(pid, p)
    local v = {
        placement = pid, hold = p.hold, shelter = p.shelter, unit = p.unit, ref = p.ref,
        by = p.by, state = p.state, placed_at = tonumber(p.placed_at),
    }
    if p.municipality and p.municipality ~= '' then v.municipality = p.municipality end
    if p.discharged_at then v.discharged_at = tonumber(p.discharged_at) end
    return household_view(v, p)
end

local function shelter_exists(c, sid)
    return redis.call('EXISTS', c.P .. 's:' .. sid) == 1
end

-- The shelter of the request, or a refusal when it is unknown or retired.
local function open_shelter(c, sid, target)
    local retired = redis.call('HGET', c.P .. 's:' .. sid, 'retired')
    if not retired then
        return no('not_found', 'no shelter with this id', target)
    end
    if retired == '1' then
        return no('conflict', 'the shelter is retired', target)
    end
    return nil
end

-- What every write shares. body(c, a) returns a refusal (no) or
-- {result = ..., shelter = changed shelter id or nil, target = audit target, replay = bool}.
local function write(body)
    return function(keys, argv)
        local c, a = ctx(keys, argv)
        sweep(c, SWEEP_BATCH)
        local out = body(c, a)
        if out.error then
            if not c.quiet_refusal then
                audit(c, c.op, out.error, out.target)
            end
            return cmsgpack.pack({error = out.error, message = out.message})
        end
        local snap
        if out.shelter then
            snap = changed(c, out.shelter)
        end
        audit(c, c.op, 'ok', out.target)
        return cmsgpack.pack({result = out.result or {}, snapshot = snap, replay = out.replay})
    end
end

-- A read: no sweep, no audit, nothing written.
local function read(body)
    return function(keys, argv)
        local c, a = ctx(keys, argv)
        local out = body(c, a)
        if out.error then
            return cmsgpack.pack({error = out.error, message = out.message})
        end
        return cmsgpack.pack({result = out.result})
    end
end

------------------------------------------------------------------------------------------
-- Registry (admin)

-- Competences, operator and IVO permit, stored as the other fields are. An empty ivo_permit
-- removes the permit (shelter_update deletes it and its date), so it is not written here.
local function practice_fields(f, a)
    for _, k in ipairs({'operator', 'ivo_permit', 'ivo_permit_date'}) do
        if a[k] ~= nil and a[k] ~= '' then
            f[#f + 1] = k
            f[#f + 1] = a[k]
        end
    end
    if a.competences ~= nil then
        f[#f + 1] = 'competences'
        f[#f + 1] = table.concat(a.competences, ',')
    end
    if a.ivo_registered ~= nil then
        f[#f + 1] = 'ivo_registered'
        f[#f + 1] = a.ivo_registered and 1 or 0
    end
    return f
end

-- What a shelter takes, or a unit's beds or access, changed: the version this change gets (the
-- one changed() gives it) is kept, so that a hold the daemon checked against an older copy of
-- the shelter is refused (see hold).
local function taking_changed(c, sid)
    redis.call('HSET', c.P .. 's:' .. sid, 'profile_version',
               tonumber(redis.call('GET', c.P .. 'ver') or '0') + 1)
end

-- Protocol fields of a shelter as they are stored: lists as comma-separated text, booleans
-- as 1/0.
local function shelter_fields(a)
    local f = {}
    for _, k in ipairs({'name', 'kind', 'municipality', 'protection', 'phone', 'max_children',
                        'boys_max_age', 'intake_hours'}) do
        if a[k] ~= nil then
            f[#f + 1] = k
            f[#f + 1] = a[k]
        end
    end
    for _, k in ipairs({'groups', 'languages'}) do
        if a[k] ~= nil then
            f[#f + 1] = k
            f[#f + 1] = table.concat(a[k], ',')
        end
    end
    for _, k in ipairs({'pets', 'substance'}) do
        if a[k] ~= nil then
            f[#f + 1] = k
            f[#f + 1] = a[k] and 1 or 0
        end
    end
    return practice_fields(f, a)
end

local function shelter_add(c, a)
    local sid = a.shelter
    local t = {shelter = sid}
    if shelter_exists(c, sid) then
        return no('conflict', 'a shelter with this id already exists', t)
    end
    local sk = c.P .. 's:' .. sid
    redis.call('HSET', sk, 'groups', 'women', 'max_children', -1, 'boys_max_age', -1, 'pets', 0,
               'substance', 0, 'languages', '', 'intake_hours', '24/7', 'paused', 0, 'retired', 0,
               'updated_at', c.now, 'created_at', c.now)
    redis.call('HSET', sk, unpack(shelter_fields(a)))
    redis.call('SADD', c.P .. 'shelters', sid)
    return {shelter = sid, target = t}
end

local function shelter_update(c, a)
    local sid = a.shelter
    local t = {shelter = sid}
    local refusal = open_shelter(c, sid, t)
    if refusal then return refusal end
    local fields = shelter_fields(a)
    if #fields > 0 then
        redis.call('HSET', c.P .. 's:' .. sid, unpack(fields))
    end
    if a.ivo_permit == '' then
        redis.call('HDEL', c.P .. 's:' .. sid, 'ivo_permit', 'ivo_permit_date')
    end
    taking_changed(c, sid)
    return {shelter = sid, target = t}
end

local function shelter_retire(c, a)
    local sid = a.shelter
    local t = {shelter = sid}
    if not shelter_exists(c, sid) then
        return no('not_found', 'no shelter with this id', t)
    end
    local sk = c.P .. 's:' .. sid
    if redis.call('HGET', sk, 'retired') == '1' then
        return no('conflict', 'the shelter is already retired', t)
    end
    for _, uid in ipairs(redis.call('SMEMBERS', c.P .. 'u:' .. sid)) do
        local uk = c.P .. 'unit:' .. sid .. ':' .. uid
        if live_hold(c, uk) or redis.call('HEXISTS', uk, 'placement') == 1 then
            return no('conflict',
                      'the shelter has open holds or active placements; close them first', t)
        end
    end
    redis.call('HSET', sk, 'retired', 1)
    return {shelter = sid, target = t}
end

local function unit_add(c, a)
    local sid, uid = a.shelter, a.unit
    local t = {shelter = sid, unit = uid}
    local refusal = open_shelter(c, sid, t)
    if refusal then return refusal end
    local uk = c.P .. 'unit:' .. sid .. ':' .. uid
    if redis.call('EXISTS', uk) == 1 then
        return no('conflict', 'the shelter already has a unit with this id', t)
    end
    redis.call('HSET', uk, 'beds', a.beds, 'accessible', a.accessible and 1 or 0, 'state',
               'closed', 'changed_at', c.now)
    redis.call('SADD', c.P .. 'u:' .. sid, uid)
    taking_changed(c, sid)
    return {shelter = sid, target = t}
end

local function unit_update(c, a)
    local sid, uid = a.shelter, a.unit
    local t = {shelter = sid, unit = uid}
    local refusal = open_shelter(c, sid, t)
    if refusal then return refusal end
    local uk = c.P .. 'unit:' .. sid .. ':' .. uid
    if redis.call('EXISTS', uk) == 0 then
        return no('not_found', 'the shelter has no unit with this id', t)
    end
    if a.beds ~= nil then redis.call('HSET', uk, 'beds', a.beds) end
    if a.accessible ~= nil then redis.call('HSET', uk, 'accessible', a.accessible and 1 or 0) end
    taking_changed(c, sid)
    return {shelter = sid, target = t}
end

local function unit_remove(c, a)
    local sid, uid = a.shelter, a.unit
    local t = {shelter = sid, unit = uid}
    local uk = c.P .. 'unit:' .. sid .. ':' .. uid
    if not shelter_exists(c, sid) or redis.call('EXISTS', uk) == 0 then
        return no('not_found', 'no such shelter or unit', t)
    end
    if live_hold(c, uk) or redis.call('HEXISTS', uk, 'placement') == 1 then
        return no('conflict', 'the unit is held or has an active placement', t)
    end
    redis.call('DEL', uk)
    redis.call('SREM', c.P .. 'u:' .. sid, uid)
    return {shelter = sid, target = t}
end

------------------------------------------------------------------------------------------
-- Vacancies (the shelter itself; the daemon has checked that the shelter is the caller's)

local function vacancy_set(c, a)
    local sid, uid = a.shelter, a.unit
    local t = {shelter = sid, unit = uid}
    local uk = c.P .. 'unit:' .. sid .. ':' .. uid
    local refusal = open_shelter(c, sid, t)
    if refusal then return refusal end
    if redis.call('EXISTS', uk) == 0 then
        return no('not_found', 'no such shelter or unit', t)
    end
    local hold, pl = live_hold(c, uk), redis.call('HGET', uk, 'placement')
    if hold then
        return no('conflict',
                  'the unit is held for a referral; confirm or decline the hold instead', t)
    end
    if pl then
        return no('conflict', 'the unit has an active placement; record a discharge instead', t)
    end
    redis.call('HSET', uk, 'state', a.state, 'changed_at', c.now)
    redis.call('HSET', c.P .. 's:' .. sid, 'updated_at', c.now)
    emit(c, 'vacancy', {shelter = sid, unit = uid, state = a.state})
    return {shelter = sid, target = t}
end

-- vacancy.confirm, intake.pause and intake.resume: the shelter's own marks. Each sets
-- updated_at; the intake ops also set or clear `paused`.
local PAUSED = {['intake.pause'] = 1, ['intake.resume'] = 0}

local function shelter_mark(c, a)
    local sid = a.shelter
    local t = {shelter = sid}
    local refusal = open_shelter(c, sid, t)
    if refusal then return refusal end
    local sk = c.P .. 's:' .. sid
    if PAUSED[c.op] then
        redis.call('HSET', sk, 'paused', PAUSED[c.op])
        emit(c, PAUSED[c.op] == 1 and 'paused' or 'resumed', {shelter = sid})
    end
    redis.call('HSET', sk, 'updated_at', c.now)
    return {shelter = sid, target = t}
end

------------------------------------------------------------------------------------------
-- Holds and placements

-- What a hold keeps of the referral's needed competences and of each child's basis (when the
-- responsible municipality gave them with the hold).
local function hold_practice(hk, a)
    if a.need and #a.need > 0 then redis.call('HSET', hk, 'need', table.concat(a.need, ',')) end
    if a.child_basis and #a.child_basis > 0 then
        redis.call('HSET', hk, 'child_basis', table.concat(a.child_basis, ','))
    end
end

-- args: the referral as search takes it (home, risk, perpetrator, exclude, adults, children,
-- group, wheelchair, pets, substance, language), shelter, unit, ref, callback,
-- idempotency_key; and from the daemon, which has checked the unit against the referral:
-- municipality (the responsible one), hold (the new id), ttl (ms), max_open, checked_version
-- (the shelter's version in the copy the daemon checked).
local function hold(c, a)
    local mun, sid, uid, ref, hid, ttl = a.municipality or '', a.shelter, a.unit, a.ref, a.hold,
        tonumber(a.ttl)
    local idem = a.idempotency_key or ''
    local t = {shelter = sid, unit = uid}
    if c.role == 'oncall' and not (c.area and c.area[mun]) then
        return no('forbidden', 'the on-call service acts only for the municipalities of its ' ..
                  'agreement', t)
    end
    -- The key remembers a digest of the request, never the reference itself.
    local fingerprint = redis.sha1hex(mun .. '|' .. sid .. '|' .. uid .. '|' .. ref)
    local ik = c.P .. 'idem:' .. c.who .. ':' .. idem
    if idem ~= '' then
        local prev = redis.call('GET', ik)
        if prev then
            local phid, fp = string.match(prev, '^([^|]*)|(.*)$')
            if fp ~= fingerprint then
                return no('conflict', 'this idempotency key was already used for a different hold',
                          t)
            end
            local h = hgetall(c.P .. 'hold:' .. phid)
            if not h.shelter then
                return no('conflict', 'this idempotency key belongs to a hold that is no longer kept',
                          t)
            end
            local state = hold_view(c, phid, h).state
            if not OPEN[state] then
                return no('conflict', 'the hold made with this idempotency key is ' .. state ..
                          '; search again for a unit', {shelter = sid, unit = uid, hold = phid})
            end
            local phone = redis.call('HGET', c.P .. 's:' .. sid, 'phone')
            t.hold = phid
            t.phone = 'disclosed'
            return {result = {hold = phid, shelter = sid, unit = uid, municipality = h.municipality,
                              state = state, expires_at = tonumber(h.expires_at), phone = phone},
                    replay = true, target = t}
        end
    end
    local sk = c.P .. 's:' .. sid
    local retired, paused, phone, profile = unpack(redis.call('HMGET', sk, 'retired', 'paused',
                                                              'phone', 'profile_version'))
    if not retired then
        return no('not_found', 'no shelter with this id', t)
    end
    if retired == '1' then
        return no('conflict', 'the shelter is retired', t)
    end
    if paused == '1' then
        return no('conflict', 'the shelter has paused its intake', t)
    end
    if a.checked_version and tonumber(profile or '0') > tonumber(a.checked_version) then
        return no('conflict', 'what the shelter takes changed while the hold was checked; ' ..
                  'search again', t)
    end
    local uk = c.P .. 'unit:' .. sid .. ':' .. uid
    local state, pl = unpack(redis.call('HMGET', uk, 'state', 'placement'))
    if not state then
        return no('not_found', 'the shelter has no unit with this id', t)
    end
    if live_hold(c, uk) then
        return no('conflict', 'the unit is already held for another referral', t)
    end
    if pl or state ~= 'free' then
        return no('conflict', 'the unit is not free', t)
    end
    local byk = c.P .. 'holds:by:' .. c.who
    if redis.call('SCARD', byk) >= tonumber(a.max_open) then
        return no('limit_reached', 'you have ' .. a.max_open .. ' open holds, the most one may ' ..
                  'have at once; release the ones you no longer need', t)
    end
    local hk = c.P .. 'hold:' .. hid
    if redis.call('EXISTS', hk) == 1 then
        return no('internal', 'hold id collision; retry', t)
    end
    local expires = c.now + ttl
    redis.call('HSET', hk, 'shelter', sid, 'unit', uid, 'ref', ref, 'by', c.who, 'municipality',
               mun, 'state', 'held', 'created_at', c.now, 'expires_at', expires,
               'risk', a.risk, 'adults', a.adults or 1, 'children', children_text(a.children),
               'group', a.group or 'women', 'wheelchair', a.wheelchair and 1 or 0,
               'pets', a.pets and 1 or 0, 'substance', a.substance and 1 or 0)
    if a.language then redis.call('HSET', hk, 'language', a.language) end
    if a.callback then redis.call('HSET', hk, 'callback', a.callback) end
    hold_practice(hk, a)
    if idem ~= '' then
        redis.call('HSET', hk, 'idempotency_key', ik)
    end
    redis.call('HSET', uk, 'hold', hid)
    redis.call('ZADD', c.P .. 'holds:open', expires, hid)
    redis.call('ZADD', c.P .. 'holds:escalate', c.now + tonumber(a.escalate_after), hid)
    redis.call('SADD', byk, hid)
    redis.call('ZADD', c.P .. 'holds', c.now, hid)
    redis.call('ZADD', c.P .. 'holds:s:' .. sid, c.now, hid)
    if mun ~= '' then
        redis.call('ZADD', c.P .. 'holds:m:' .. mun, c.now, hid)
    end
    if idem ~= '' then
        -- A retry is answered for 24 hours, or for as long as the hold itself lasts.
        local keep = math.max(IDEM_TTL_S, math.ceil(ttl / 1000))
        redis.call('SET', ik, hid .. '|' .. fingerprint, 'EX', keep)
    end
    stat(c, 'holds:made')
    follow(c, mun, 'holds')
    emit(c, 'held', {shelter = sid, unit = uid, hold = hid, municipality = mun, by = c.who})
    t.hold = hid
    t.phone = 'disclosed'
    return {result = {hold = hid, shelter = sid, unit = uid, municipality = mun, state = 'held',
                      expires_at = expires, phone = phone},
            shelter = sid, target = t}
end

-- Loads an open hold and checks that the caller may act on it in the given way and that its
-- state is one of `states`. Returns h, nil or nil, refusal.
local function hold_for(c, hid, who_may, states)
    local h = hgetall(c.P .. 'hold:' .. hid)
    local t = {hold = hid, shelter = h.shelter, unit = h.unit}
    if not h.shelter then
        return nil, no('not_found', 'no hold with this id', {})
    end
    if who_may == 'holder' then
        if not ((c.role == 'social' and h.municipality == c.id) or
                (c.role == 'oncall' and c.area and c.area[h.municipality])) then
            return nil, no('forbidden', 'only the municipality the hold was made for, or the ' ..
                           'on-call service that acts for it, may release it', t)
        end
    elseif not (c.role == 'shelter' and c.id == h.shelter) then
        return nil, no('forbidden', 'only the shelter the hold is on may do this', t)
    end
    if past_expiry(c, h) then
        expire(c, hid, h)
        return nil, no('conflict', 'the hold has expired', t)
    end
    if not states[h.state] then
        return nil, no('conflict', 'the hold is ' .. h.state .. ', which this cannot change', t)
    end
    return h, nil
end

local HELD = {held = true}

local function closed(c, hid, h)
    return {result = {hold = hold_view(c, hid, hgetall(c.P .. 'hold:' .. hid))},
            shelter = h.shelter, target = {hold = hid, shelter = h.shelter, unit = h.unit}}
end

-- The hold's record when the caller, its shelter, already brought it to `state`: a repeat of
-- the request whose answer was lost (the client sends it again after a failover), to be
-- answered as the first one was, changing nothing.
local function repeated(c, hid, state)
    local h = hgetall(c.P .. 'hold:' .. hid)
    if h.state == state and c.role == 'shelter' and c.id == h.shelter then
        return h
    end
    return nil
end

-- The shelter says "yes, come": the hold now lasts until the household arrives.
-- args: hold, arrival_by (ms, optional), and from the daemon: arrival_ttl (ms).
local function hold_accept(c, a)
    local hid = a.hold
    local again = repeated(c, hid, 'accepted')
    if again and (a.arrival_by == nil or tonumber(a.arrival_by) == tonumber(again.expires_at)) then
        return {result = {hold = hold_view(c, hid, again)},
                target = {hold = hid, shelter = again.shelter, unit = again.unit}}
    end
    local h, refusal = hold_for(c, hid, 'shelter', HELD)
    if not h then return refusal end
    local expires = tonumber(a.arrival_by) or (c.now + tonumber(a.arrival_ttl))
    redis.call('HSET', c.P .. 'hold:' .. hid, 'state', 'accepted', 'accepted_at', c.now,
               'expires_at', expires)
    redis.call('ZADD', c.P .. 'holds:open', expires, hid)
    redis.call('ZREM', c.P .. 'holds:escalate', hid)
    stat(c, 'holds:accepted')
    follow(c, h.municipality, 'acceptances')
    follow(c, h.municipality, 'to_acceptance:' .. minutes_since(c, h.created_at))
    emit(c, 'accepted', hold_event(hid, h))
    return {result = {hold = hold_view(c, hid, hgetall(c.P .. 'hold:' .. hid))},
            target = {hold = hid, shelter = h.shelter, unit = h.unit}}
end

local function hold_release(c, a)
    local hid = a.hold
    local h, refusal = hold_for(c, hid, 'holder', OPEN)
    if not h then return refusal end
    close_hold(c, hid, h, 'released')
    return closed(c, hid, h)
end

-- args: hold, reason (a code), note (optional text).
local function hold_decline(c, a)
    local hid = a.hold
    local h, refusal = hold_for(c, hid, 'shelter', OPEN)
    if not h then return refusal end
    close_hold(c, hid, h, 'declined', {reason = a.reason, note = a.note})
    stat(c, 'declines:' .. a.reason)
    follow(c, h.municipality, 'declines:' .. a.reason)
    return closed(c, hid, h)
end

-- Each child's basis as the placement records it: those given at confirmation, else those
-- given with the hold, else sol for every child. Returns the list, or nil and a refusal when
-- the count does not match the hold's children.
local function child_bases(hid, h, a)
    local n = #children_list(h.children)
    local given = a.child_basis
    if not given or #given == 0 then
        given = split(h.child_basis)
    end
    if #given == 0 then
        for i = 1, n do given[i] = 'sol' end
    end
    if #given ~= n then
        return nil, no('bad_request', 'child_basis needs one basis per child of the hold (' ..
                       n .. '), in the order of its referral', {hold = hid, shelter = h.shelter,
                                                              unit = h.unit})
    end
    return given, nil
end

-- Follow-up: children placed per basis and age band (of the age the referral gave).
local function count_children(c, h, bases)
    for i, child in ipairs(children_list(h.children)) do
        stat(c, 'children:' .. bases[i] .. ':' .. age_band(child.age))
    end
end

-- The household has arrived. args: hold, child_basis (optional, one per child), and from the
-- daemon: placement (the new id). A repeat while the placement is active is answered as the
-- first confirmation was.
local function hold_confirm(c, a)
    local hid, pid = a.hold, a.placement
    local again = repeated(c, hid, 'confirmed')
    local placed = again and again.placement and hgetall(c.P .. 'pl:' .. again.placement)
    if placed and placed.state == 'active' then
        local done = again.placement
        return {result = {hold = hold_view(c, hid, again), placement = placement_view(done, placed)},
                target = {hold = hid, placement = done, shelter = again.shelter,
                          unit = again.unit}}
    end
    local h, refusal = hold_for(c, hid, 'shelter', OPEN)
    if not h then return refusal end
    local pk = c.P .. 'pl:' .. pid
    if redis.call('EXISTS', pk) == 1 then
        return no('internal', 'placement id collision; retry', {hold = hid})
    end
    local bases, wrong = child_bases(hid, h, a)
    if not bases then return wrong end
    close_hold(c, hid, h, 'confirmed', {placement = pid})
    redis.call('HSET', pk, 'hold', hid, 'shelter', h.shelter, 'unit', h.unit, 'ref', h.ref,
               'by', h.by, 'municipality', h.municipality, 'state', 'active', 'placed_at', c.now)
    for _, k in ipairs({'risk', 'adults', 'children', 'group', 'need'}) do
        if h[k] then redis.call('HSET', pk, k, h[k]) end
    end
    if #bases > 0 then
        redis.call('HSET', pk, 'child_basis', table.concat(bases, ','))
    end
    count_children(c, h, bases)
    local uk = c.P .. 'unit:' .. h.shelter .. ':' .. h.unit
    redis.call('HSET', uk, 'state', 'occupied', 'placement', pid, 'changed_at', c.now)
    redis.call('HSET', c.P .. 's:' .. h.shelter, 'updated_at', c.now)
    redis.call('ZADD', c.P .. 'pls', c.now, pid)
    redis.call('ZADD', c.P .. 'pls:s:' .. h.shelter, c.now, pid)
    if h.municipality ~= '' then
        redis.call('ZADD', c.P .. 'pls:m:' .. h.municipality, c.now, pid)
    end
    stat(c, 'placements:made')
    follow(c, h.municipality, 'placements')
    follow(c, h.municipality, 'to_arrival:' .. minutes_since(c, h.created_at))
    for _, child in ipairs(children_list(h.children)) do
        follow(c, h.municipality, 'children:' .. age_band(child.age))
    end
    return {result = {hold = hold_view(c, hid, hgetall(c.P .. 'hold:' .. hid)),
                      placement = placement_view(pid, hgetall(pk))},
            shelter = h.shelter,
            target = {hold = hid, placement = pid, shelter = h.shelter, unit = h.unit}}
end

local function placement_discharge(c, a)
    local pid = a.placement
    local pk = c.P .. 'pl:' .. pid
    local p = hgetall(pk)
    local t = {placement = pid, shelter = p.shelter, unit = p.unit}
    if not p.shelter then
        return no('not_found', 'no placement with this id', {})
    end
    if not (c.role == 'shelter' and c.id == p.shelter) then
        return no('forbidden', 'only the shelter of the placement may record its discharge', t)
    end
    if p.state == 'discharged' then -- a repeat: answered as the first one was
        return {result = {placement = placement_view(pid, p)}, target = t}
    end
    if p.state ~= 'active' then
        return no('conflict', 'the placement is ' .. tostring(p.state), t)
    end
    redis.call('HSET', pk, 'state', 'discharged', 'discharged_at', c.now)
    local uk = c.P .. 'unit:' .. p.shelter .. ':' .. p.unit
    if redis.call('HGET', uk, 'placement') == pid then
        redis.call('HDEL', uk, 'placement')
        redis.call('HSET', uk, 'state', 'free', 'changed_at', c.now)
    end
    redis.call('HSET', c.P .. 's:' .. p.shelter, 'updated_at', c.now)
    redis.call('ZADD', c.P .. 'purge', c.now + c.ref_ret, 'p:' .. pid)
    stat(c, 'placements:discharged')
    follow(c, p.municipality, 'discharges')
    -- Nights by the local calendar: in on Monday, out on Wednesday is two nights.
    local nights = stockholm_day(c.now) - stockholm_day(tonumber(p.placed_at))
    if nights > 0 then follow(c, p.municipality, 'nights', nights) end
    emit(c, 'discharged', {shelter = p.shelter, unit = p.unit, placement = pid,
                           municipality = p.municipality, by = p.by})
    return {result = {placement = placement_view(pid, hgetall(pk))}, shelter = p.shelter,
            target = t}
end

------------------------------------------------------------------------------------------
-- Upkeep

-- Records deleted, their writes still in the append-only file: the debt is remembered in
-- Redis itself, so that a daemon stopped before it could ask for a rewrite, or another one,
-- still pays it (housekeeping.c).
local function owe_rewrite(c)
    redis.call('INCR', c.P .. 'purge_gen')
end

-- Deletes one closed record whose reference retention has passed, with its index entries.
local function purge_record(c, item)
    local kind, id = string.sub(item, 1, 1), string.sub(item, 3)
    if kind == 's' then
        local k = c.P .. 'st:' .. id
        local mun = redis.call('HGET', k, 'municipality')
        if mun then
            redis.call('ZREM', c.P .. 'standing:m:' .. mun, id)
        end
        redis.call('DEL', k)
        redis.call('ZREM', c.P .. 'purge', item)
        return
    end
    local base, k = 'pls', c.P .. 'pl:' .. id
    if kind == 'h' then
        base, k = 'holds', c.P .. 'hold:' .. id
        local ik = redis.call('HGET', k, 'idempotency_key')
        -- The key may since have been reused for a newer hold: delete it only if it is ours.
        if ik then
            local cur = redis.call('GET', ik)
            if cur and string.sub(cur, 1, #id + 1) == id .. '|' then
                redis.call('DEL', ik)
            end
        end
    end
    local sid, mun = unpack(redis.call('HMGET', k, 'shelter', 'municipality'))
    if sid then
        redis.call('ZREM', c.P .. base .. ':s:' .. sid, id)
    end
    if mun and mun ~= '' then
        redis.call('ZREM', c.P .. base .. ':m:' .. mun, id)
    end
    redis.call('ZREM', c.P .. base, id)
    redis.call('DEL', k)
    redis.call('ZREM', c.P .. 'purge', item)
end

-- Ends a standing search (cancelled or expired); its reference is kept for the retention.
local function end_standing(c, id, st, state)
    local k = c.P .. 'st:' .. id
    redis.call('HSET', k, 'state', state, 'closed_at', c.now)
    redis.call('ZREM', c.P .. 'standing', id)
    redis.call('SREM', c.P .. 'standing:by:' .. st.by, id)
    redis.call('ZADD', c.P .. 'purge', c.now + c.ref_ret, 's:' .. id)
    if tonumber(st.matches or '0') == 0 then
        stat(c, 'standing:' .. state .. '_without_match')
    end
    emit(c, 'standing', {standing = id, municipality = st.municipality, by = st.by,
                         state = state})
end

-- Trims the event log by age and length, and records its floor: every event before the first
-- one left may be gone, so a watcher resuming from before it is told so (events_read).
local function trim_log(c, max)
    local key = c.P .. 'log'
    local n = redis.call('XTRIM', key, 'MINID', '~', string.format('%d', c.now - c.event_ret))
    if max then
        n = n + redis.call('XTRIM', key, 'MAXLEN', '~', max)
    end
    if n > 0 then
        local first = redis.call('XRANGE', key, '-', '+', 'COUNT', 1)[1]
        local floor = first and first[1]
        if not floor then
            local info = redis.call('XINFO', 'STREAM', key)
            for i = 1, #info, 2 do
                if info[i] == 'last-generated-id' then floor = info[i + 1] end
            end
        end
        redis.call('SET', c.P .. 'log:floor', floor)
    end
end

-- Escalates holds nobody has answered: step 1 at escalate_after (for the shelter and the
-- holder), step 2 at escalate_oncall_after (for on-call and admin as well). One event per hold
-- and step, whichever daemon's sweep comes first: the zset entry moves on in the same step.
local function escalate(c, oncall_after, limit)
    local due = redis.call('ZRANGEBYSCORE', c.P .. 'holds:escalate', '-inf', c.now, 'LIMIT', 0,
                           limit)
    for _, hid in ipairs(due) do
        local hk = c.P .. 'hold:' .. hid
        local h = hgetall(hk)
        if h.shelter and h.state == 'held' and tonumber(h.expires_at) > c.now then
            local step = (tonumber(h.escalated) or 0) + 1
            redis.call('HSET', hk, 'escalated', step)
            emit(c, 'escalated', hold_event(hid, h, {step = step}))
            stat(c, 'holds:escalated:' .. step)
            local next_at = tonumber(h.created_at) + oncall_after
            if step == 1 and next_at > c.now then
                redis.call('ZADD', c.P .. 'holds:escalate', next_at, hid)
            elseif step == 1 then
                redis.call('ZADD', c.P .. 'holds:escalate', c.now, hid) -- step 2 at once
            else
                redis.call('ZREM', c.P .. 'holds:escalate', hid)
            end
        else
            redis.call('ZREM', c.P .. 'holds:escalate', hid)
        end
    end
end

-- The record of a closed hold or placement as the archive keeps it: ids, times, states, the
-- responsible municipality, shelter, unit, household, reference, decline code and note. The
-- worker's callback number is not part of the case and is left out. Nil when it is gone.
local function archive_record(c, item)
    local kind, id = string.sub(item, 1, 1), string.sub(item, 3)
    if kind ~= 'h' and kind ~= 'p' then
        return nil -- a standing search: no case record, its reference simply goes
    end
    local r = hgetall(c.P .. (kind == 'h' and 'hold:' or 'pl:') .. id)
    if not r.shelter then
        return nil
    end
    local v = kind == 'h' and hold_view(c, id, r) or placement_view(id, r)
    v.callback = nil
    v.record = kind == 'h' and 'hold' or 'placement'
    v.archived_at = c.now
    return v
end

-- Archive mode, first step: the due records are claimed for `lease` ms (no other sweep hands
-- them out meanwhile) and returned for the daemon to write to its archive; fristad_archived
-- deletes them once the daemon has them on disk. A daemon that dies in between loses nothing:
-- the lease runs out and the next sweep hands the records out again.
local function claim_for_archive(c, due, lease)
    local out = {}
    if #due > 0 and redis.call('GET', c.P .. 'retention') ~= 'archive' then
        redis.call('SET', c.P .. 'retention', 'archive')
    end
    for _, item in ipairs(due) do
        local rec = archive_record(c, item)
        if rec then
            redis.call('ZADD', c.P .. 'purge', c.now + lease, item)
            out[#out + 1] = {item = item, record = rec}
        else
            purge_record(c, item) -- nothing left to archive: only its index entries
        end
    end
    return out
end

-- Expires holds and standing searches, escalates unanswered holds, trims the event log, and
-- deletes closed records whose reference retention has passed; in archive mode (retention =
-- 'archive', lease = ms) it hands holds and placements out to be archived instead. Once any
-- daemon archived into this store, a daemon in delete mode deletes nothing. Other args:
-- escalate_oncall_after (ms), event_max (length of the event log).
local function sweep_all(keys, argv)
    local c, a = ctx(keys, argv)
    local expired = sweep(c, SWEEP_BATCH)
    escalate(c, tonumber(a.escalate_oncall_after) or 1800000, SWEEP_BATCH)
    for _, id in ipairs(redis.call('ZRANGEBYSCORE', c.P .. 'standing', '-inf', c.now, 'LIMIT', 0,
                                   SWEEP_BATCH)) do
        local st = hgetall(c.P .. 'st:' .. id)
        if st.state == 'active' then
            end_standing(c, id, st, 'expired')
        else
            redis.call('ZREM', c.P .. 'standing', id)
        end
    end
    trim_log(c, tonumber(a.event_max))
    local due = redis.call('ZRANGEBYSCORE', c.P .. 'purge', '-inf', c.now, 'LIMIT', 0, SWEEP_BATCH)
    local out = {expired = expired, purged = 0}
    if a.retention == 'archive' then
        out.archive = claim_for_archive(c, due, tonumber(a.lease) or 60000)
    elseif #due > 0 and redis.call('GET', c.P .. 'retention') == 'archive' then
        out.kept_for_archive = #due
    else
        for _, item in ipairs(due) do
            purge_record(c, item)
        end
        out.purged = #due
    end
    if out.purged > 0 then
        owe_rewrite(c)
    end
    local rewritten = tonumber(redis.call('GET', c.P .. 'rewritten_gen') or '0')
    -- Exact, not '~': an approximate trim removes only whole stream nodes, so a small stream
    -- would keep its old entries for ever.
    redis.call('XTRIM', c.P .. 'audit', 'MINID', tostring(c.now - c.audit_ret))
    out.purge_gen = tonumber(redis.call('GET', c.P .. 'purge_gen') or '0')
    out.rewritten_gen = rewritten
    return cmsgpack.pack({result = out})
end

-- An append-only file rewrite that began after the sweep that reported purge_gen `gen` has
-- completed: the records deleted up to then are off the disk. args: gen.
local function aof_rewritten(keys, argv)
    local c, a = ctx(keys, argv)
    local gen = tonumber(a.gen) or 0
    if gen > tonumber(redis.call('GET', c.P .. 'rewritten_gen') or '0') then
        redis.call('SET', c.P .. 'rewritten_gen', gen)
    end
    return cmsgpack.pack({result = {}})
end

-- Archive mode, second step: the daemon has written and synced these records (args: items,
-- as the sweep named them); now they are deleted. A record deleted already is skipped, so a
-- repeated call is harmless.
local function archived(keys, argv)
    local c, a = ctx(keys, argv)
    local n = 0
    for _, item in ipairs(a.items or {}) do
        if redis.call('ZSCORE', c.P .. 'purge', item) then
            purge_record(c, item)
            n = n + 1
        end
    end
    if n > 0 then
        owe_rewrite(c)
    end
    stat_by(c, 'archived', n)
    return cmsgpack.pack({result = {purged = n}})
end

-- Adds the follow-up counts of searches a daemon gathered since its last batch: per month (as
-- the daemon saw it at each search, in Swedish local time) and responsible municipality, the
-- searches, those that found nothing, and per reason the no-match searches it ruled units out
-- in. A daemon numbers its batches and sends one at a time until it is answered, so a batch
-- whose reply was lost is sent again: it is added once, here, by its number.
-- args: daemon (an id of the daemon's run), batch (1, 2, ...), cells = {{month, municipality,
-- searches, no_match, reasons = {reason = count}}}.
local BATCH_MEMORY_S = 7 * 86400

local function search_stat(keys, argv)
    local c, a = ctx(keys, argv)
    if a.daemon then
        local bk = c.P .. 'searchbatch:' .. a.daemon
        if tonumber(a.batch) <= tonumber(redis.call('GET', bk) or '0') then
            return cmsgpack.pack({result = {duplicate = true}})
        end
        redis.call('SET', bk, a.batch, 'EX', BATCH_MEMORY_S)
    end
    local k = c.P .. 'stats'
    for _, cell in ipairs(a.cells or {}) do
        local month, mun = cell.month, cell.municipality
        local searches, no_match = tonumber(cell.searches) or 0, tonumber(cell.no_match) or 0
        redis.call('HINCRBY', k, 'searches', searches)
        redis.call('HINCRBY', k, 'no_match', no_match)
        for reason, n in pairs(cell.reasons or {}) do
            redis.call('HINCRBY', k, 'reason:' .. reason, tonumber(n))
        end
        if type(month) == 'string' and string.match(month, '^%d%d%d%d%-%d%d$') and
            type(mun) == 'string' and string.match(mun, '^%d%d%d%d$') then
            local fk = c.P .. 'fu:' .. month .. ':' .. mun
            redis.call('HINCRBY', fk, 'searches', searches)
            if no_match > 0 then redis.call('HINCRBY', fk, 'no_match', no_match) end
            for reason, n in pairs(cell.reasons or {}) do
                redis.call('HINCRBY', fk, 'no_match:' .. reason, tonumber(n))
            end
            redis.call('SADD', c.P .. 'fu:' .. month, mun)
        end
    end
    return cmsgpack.pack({result = {duplicate = false}})
end

-- Records a refusal or a disclosure of the op decided in the daemon itself.
-- args: result, and the target's shelter, unit, hold, placement, phone ("disclosed").
local function audit_note(keys, argv)
    local c, a = ctx(keys, argv)
    audit(c, c.op, a.result, a)
    return cmsgpack.pack({result = {}})
end

-- Records of layout 1 named their fields in short forms; layout 2 names them as the wire does.
-- Each call renames at most a batch of records; args: phase, cursor. Returns the next phase
-- and cursor, or done.
local RENAMES = {
    shelter = {mun = 'municipality', prot = 'protection', maxch = 'max_children',
               boys = 'boys_max_age', subst = 'substance', langs = 'languages',
               upd = 'updated_at', created = 'created_at', v = 'version'},
    unit = {acc = 'accessible', chg = 'changed_at'},
    hold = {mun = 'municipality', created = 'created_at', expires = 'expires_at',
            closed = 'closed_at', idem = 'idempotency_key'},
    placement = {mun = 'municipality', placed = 'placed_at', discharged = 'discharged_at'},
}

local function rename_fields(key, map)
    for old, new in pairs(map) do
        local v = redis.call('HGET', key, old)
        if v then
            redis.call('HSET', key, new, v)
            redis.call('HDEL', key, old)
        end
    end
end

local function migrate(keys, argv)
    local c, a = ctx(keys, argv)
    if tonumber(redis.call('GET', c.P .. 'schema') or '0') >= SCHEMA then
        return cmsgpack.pack({result = {done = true}})
    end
    local phase, cursor = a.phase or 'shelters', a.cursor or '0'
    local next_cursor, items
    if phase == 'shelters' then
        local r = redis.call('SSCAN', c.P .. 'shelters', cursor, 'COUNT', 200)
        next_cursor, items = r[1], r[2]
        for _, sid in ipairs(items) do
            rename_fields(c.P .. 's:' .. sid, RENAMES.shelter)
            for _, uid in ipairs(redis.call('SMEMBERS', c.P .. 'u:' .. sid)) do
                rename_fields(c.P .. 'unit:' .. sid .. ':' .. uid, RENAMES.unit)
            end
        end
    else
        local r = redis.call('ZSCAN', c.P .. (phase == 'holds' and 'holds' or 'pls'), cursor,
                             'COUNT', 500)
        next_cursor, items = r[1], r[2]
        for i = 1, #items, 2 do
            if phase == 'holds' then
                local hk = c.P .. 'hold:' .. items[i]
                rename_fields(hk, RENAMES.hold)
                local state, by = unpack(redis.call('HMGET', hk, 'state', 'by'))
                if state == 'held' and by then
                    redis.call('SADD', c.P .. 'holds:by:' .. by, items[i])
                end
            else
                rename_fields(c.P .. 'pl:' .. items[i], RENAMES.placement)
            end
        end
    end
    if next_cursor == '0' then
        if phase == 'shelters' then
            phase = 'holds'
        elseif phase == 'holds' then
            phase = 'placements'
        else
            redis.call('SET', c.P .. 'schema', SCHEMA)
            return cmsgpack.pack({result = {done = true}})
        end
    end
    return cmsgpack.pack({result = {done = false, phase = phase, cursor = next_cursor}})
end

------------------------------------------------------------------------------------------
-- Reads

-- Snapshots made anew and stored, for a daemon that loads its index: it reads the stored ones
-- itself (SSCAN of shelters, MGET of snap:<sid>), and asks here for those that are missing or
-- were stored by another library. args: shelters, a few ids. Returns their packed
-- {version, shelter} maps back to back in one string.
local function snapshots(keys, argv)
    local c, a = ctx(keys, argv)
    local out = {}
    for _, sid in ipairs(a.shelters or {}) do
        if shelter_exists(c, sid) then
            local snap = snapshot(c, sid)
            local packed = cmsgpack.pack({version = snap.version, shelter = snap})
            redis.call('SET', c.P .. 'snap:' .. sid, SNAPSHOT_TAG .. packed)
            out[#out + 1] = packed
        end
    end
    return cmsgpack.pack({result = {snapshots = table.concat(out)}})
end

local LIST_MAX = 500 -- standing searches of a municipality listed at most
local LIST_PAGE = 200 -- holds or placements a page: a few milliseconds of Redis

-- The records of several zsets of ids by time merged newest first (ids of the same millisecond
-- by id, descending, as Redis orders equal scores in reverse), at most `max` of them as
-- {id, at (the score as Redis wrote it)}, and whether more follow. With `after` ({at, id}) only
-- those that come after that one: the next page of a listing. Each zset is read a chunk at a
-- time (the first small when there are many, the next ones larger) and the heads are merged by
-- a heap, so that a page costs about `max` records and a few calls per zset, however long the
-- zsets or many (an on-call service's area may have 290 municipalities).
local function newest_of(keys, max, after)
    local first = math.max(2, math.min(max + 1, math.ceil((max + 1) / #keys)))
    local after_at = after and tonumber(after.at)

    local function newer(x, y)
        if x.n ~= y.n then return x.n > y.n end
        return x.id > y.id
    end

    -- The next record of stream s that comes after the cursor, or nil.
    local function head(s)
        while true do
            if s.i > #s.buf then
                if s.ended then return nil end
                local flat = redis.call('ZREVRANGEBYSCORE', s.key, s.top, '-inf', 'WITHSCORES',
                                        'LIMIT', s.off, s.chunk)
                local got = #flat / 2
                s.off, s.ended, s.i, s.buf = s.off + got, got < s.chunk, 1, {}
                s.chunk = math.min(s.chunk * 4, max + 1)
                for i = 1, #flat, 2 do
                    s.buf[#s.buf + 1] = {id = flat[i], at = flat[i + 1], n = tonumber(flat[i + 1])}
                end
                if got == 0 then return nil end
            end
            local e = s.buf[s.i]
            if after and e.n == after_at and e.id >= after.id then
                s.i = s.i + 1 -- the cursor's millisecond, at or before the cursor: listed already
            else
                return e
            end
        end
    end

    local heap = {}
    local function sift_down(k)
        local n = #heap
        while true do
            local l, r, m = 2 * k, 2 * k + 1, k
            if l <= n and newer(heap[l].head, heap[m].head) then m = l end
            if r <= n and newer(heap[r].head, heap[m].head) then m = r end
            if m == k then return end
            heap[k], heap[m] = heap[m], heap[k]
            k = m
        end
    end
    for _, key in ipairs(keys) do
        local s = {key = key, top = after and after.at or '+inf', off = 0, chunk = first, i = 1,
                   buf = {}, ended = false}
        s.head = head(s)
        if s.head then
            heap[#heap + 1] = s
            local k = #heap
            while k > 1 and newer(heap[k].head, heap[math.floor(k / 2)].head) do
                local up = math.floor(k / 2)
                heap[k], heap[up] = heap[up], heap[k]
                k = up
            end
        end
    end
    local out = {}
    while #out <= max and #heap > 0 do
        local s = heap[1]
        out[#out + 1] = s.head
        s.i = s.i + 1
        s.head = head(s)
        if not s.head then
            heap[1] = heap[#heap]
            heap[#heap] = nil
        end
        if #heap > 0 then sift_down(1) end
    end
    local more = #out > max
    out[max + 1] = nil
    return out, more
end

-- holds.list and placements.list: the records the caller is responsible for, newest first, a
-- page of LIST_PAGE at a time. On-call sees those of the municipalities of its agreement
-- (c.area), merged. A page that is not the last has `next`, "MS-ID": the time and id of its
-- last record; the next page is the same request with `after` set to it. Only the caller's own
-- lists are read, so a cursor, whatever it names, shows nothing a listing would not; and a
-- record deleted between pages (the sweep purges closed ones) does not end the listing.
local function list(c, a)
    local what = c.op == 'holds.list' and 'holds' or 'placements'
    local base = what == 'holds' and 'holds' or 'pls'
    local keys = {}
    if c.role == 'shelter' then
        keys[1] = c.P .. base .. ':s:' .. c.id
    elseif c.role == 'social' then
        keys[1] = c.P .. base .. ':m:' .. c.id
    elseif c.role == 'oncall' then
        for code in pairs(c.area or {}) do
            keys[#keys + 1] = c.P .. base .. ':m:' .. code
        end
    else
        return no('forbidden', 'this role has no holds or placements')
    end
    local after
    if a.after then
        local at, id = string.match(a.after, '^([1-9]%d*)%-([a-z][a-z0-9]+)$')
        if not at or #at > 15 or string.sub(id, 1, 1) ~= string.sub(what, 1, 1) then
            return no('bad_request', "'after' must be the 'next' of the page before, as " ..
                      'the server gave it')
        end
        after = {at = at, id = id}
    end
    if #keys == 0 then
        return {result = {[what] = {}}}
    end
    local recs, more = newest_of(keys, LIST_PAGE, after)
    local out = {}
    for _, r in ipairs(recs) do
        local id = r.id
        if what == 'holds' then
            local h = hgetall(c.P .. 'hold:' .. id)
            if h.shelter then out[#out + 1] = hold_view(c, id, h) end
        else
            local p = hgetall(c.P .. 'pl:' .. id)
            if p.shelter then out[#out + 1] = placement_view(id, p) end
        end
    end
    local res = {[what] = out}
    if more then res.next = recs[#recs].at .. '-' .. recs[#recs].id end
    return {result = res}
end

-- args: since (ms), principal, person, shelter, limit.
local function audit_read(c, a)
    local pf, sf, limit = a.principal or '', a.shelter or '', tonumber(a.limit) or 100
    local who = a.person or ''
    local out = {}
    -- A whole number as Lua prints it: tostring(1e14) would be "1e+14", which XRANGE refuses.
    -- A sequence "MS-N" starts after that entry. Beyond 2^53 a Lua number is no longer whole,
    -- and '%d' of 2^63 overflows: no entry is from that far ahead (ids are ms since 1970).
    local start
    if type(a.since) == 'string' then
        start = '(' .. a.since
    else
        local since = tonumber(a.since) or 0
        if since >= 2 ^ 53 then
            return {result = {entries = out}}
        end
        start = string.format('%d', since)
    end
    local scanned = 0
    while #out < limit and scanned < 20000 do
        local batch = redis.call('XRANGE', c.P .. 'audit', start, '+', 'COUNT', 500)
        if #batch == 0 then break end
        for _, e in ipairs(batch) do
            scanned = scanned + 1
            local id, flat = e[1], e[2]
            local f = {}
            for i = 1, #flat, 2 do f[flat[i]] = flat[i + 1] end
            if (pf == '' or f.principal == pf) and (sf == '' or f.shelter == sf) and
                (who == '' or f.person == who) then
                local entry = {at = tonumber(string.match(id, '^(%d+)')), principal = f.principal,
                               person = f.person, op = f.op, result = f.result}
                for _, k in ipairs(TARGET_KEYS) do
                    if f[k] then entry[k] = f[k] end
                end
                if entry.count then entry.count = tonumber(entry.count) end
                out[#out + 1] = entry
                if #out >= limit then break end
            end
            start = '(' .. id
        end
        if #batch < 500 then break end
    end
    return {result = {entries = out}}
end

local function stats_read(c, a)
    local flat = redis.call('HGETALL', c.P .. 'stats')
    local s = {}
    for i = 1, #flat, 2 do s[flat[i]] = tonumber(flat[i + 1]) end
    return {result = s}
end

-- Follow-up statistics: the counters of every month from from_month to to_month (YYYY-MM) of
-- one municipality or of every municipality of one county (the first two digits of a
-- municipality code are its county's). The daemon adds them up and suppresses small cells;
-- what leaves here goes only to the daemon. args: municipality or county, from_month,
-- to_month (the daemon has filled in the defaults). Result: the area and months as asked, and
-- cells = {{municipality, month, {field, count, ...}}, ...} of the counters there are.
local function followup_read(c, a)
    local y, m = string.match(a.from_month or '', '^(%d%d%d%d)%-(%d%d)$')
    local ty, tm = string.match(a.to_month or '', '^(%d%d%d%d)%-(%d%d)$')
    if not y or not ty then
        return no('bad_request', 'from_month and to_month are needed')
    end
    local from, to = tonumber(y) * 12 + tonumber(m) - 1, tonumber(ty) * 12 + tonumber(tm) - 1
    local cells = {}
    for month = from, math.min(to, from + 35) do
        local name = string.format('%04d-%02d', math.floor(month / 12), month % 12 + 1)
        local muns
        if a.municipality then
            muns = {a.municipality}
        else
            muns = redis.call('SMEMBERS', c.P .. 'fu:' .. name)
            table.sort(muns)
        end
        for _, mun in ipairs(muns) do
            if not a.county or string.sub(mun, 1, 2) == a.county then
                local flat = redis.call('HGETALL', c.P .. 'fu:' .. name .. ':' .. mun)
                if #flat > 0 then
                    for i = 2, #flat, 2 do flat[i] = tonumber(flat[i]) end
                    cells[#cells + 1] = {mun, name, flat}
                end
            end
        end
    end
    return {result = {municipality = a.municipality, county = a.county,
                      from_month = a.from_month, to_month = a.to_month, cells = cells}}
end

------------------------------------------------------------------------------------------
-- Standing searches

local REFERRAL_KEYS = {'home', 'risk', 'adults', 'children', 'group', 'wheelchair', 'pets',
                       'substance', 'language', 'perpetrator', 'exclude', 'need'}

local function standing_view(id, st)
    return {standing = id, by = st.by, municipality = st.municipality, ref = st.ref,
            state = st.state, created_at = tonumber(st.created_at),
            expires_at = tonumber(st.expires_at), matches = tonumber(st.matches or '0'),
            closed_at = tonumber(st.closed_at), referral = st.referral}
end

-- args: the referral (as search takes it), ref, hours, and from the daemon: standing (the new
-- id), municipality (the responsible one), max_open.
local function standing_add(c, a)
    local id, mun = a.standing, a.municipality
    local byk = c.P .. 'standing:by:' .. c.who
    if redis.call('SCARD', byk) >= tonumber(a.max_open) then
        return no('limit_reached', 'you have ' .. a.max_open .. ' standing searches, the most ' ..
                  'one may have at once; cancel the ones you no longer need')
    end
    local k = c.P .. 'st:' .. id
    if redis.call('EXISTS', k) == 1 then
        return no('internal', 'standing search id collision; retry')
    end
    local referral = {}
    for _, f in ipairs(REFERRAL_KEYS) do referral[f] = a[f] end
    local expires = c.now + (tonumber(a.hours) or 12) * 3600000
    redis.call('HSET', k, 'by', c.who, 'municipality', mun, 'ref', a.ref, 'referral',
               cmsgpack.pack(referral), 'state', 'active', 'created_at', c.now,
               'expires_at', expires, 'matches', 0)
    redis.call('ZADD', c.P .. 'standing', expires, id)
    redis.call('SADD', byk, id)
    redis.call('ZADD', c.P .. 'standing:m:' .. mun, c.now, id)
    stat(c, 'standing:made')
    emit(c, 'standing', {standing = id, municipality = mun, by = c.who, state = 'active'})
    local view = standing_view(id, hgetall(k))
    view.referral = nil
    return {result = {standing = view}}
end

local function standing_cancel(c, a)
    local id = a.standing
    local st = hgetall(c.P .. 'st:' .. id)
    if not st.by then
        return no('not_found', 'no standing search with this id')
    end
    if not (st.by == c.who or (c.role == 'social' and st.municipality == c.id)) then
        return no('forbidden', 'only whoever registered the standing search may cancel it')
    end
    if st.state ~= 'active' then
        return no('conflict', 'the standing search is ' .. st.state)
    end
    end_standing(c, id, st, 'cancelled')
    local view = standing_view(id, hgetall(c.P .. 'st:' .. id))
    view.referral = nil
    return {result = {standing = view}}
end

-- The standing searches the caller may see: social services those of their municipality,
-- on-call those it registered.
local function standing_list(c, a)
    local ids
    if c.role == 'social' then
        ids = redis.call('ZREVRANGE', c.P .. 'standing:m:' .. c.id, 0, LIST_MAX - 1)
    else
        ids = redis.call('SMEMBERS', c.P .. 'standing:by:' .. c.who)
    end
    local out = {}
    for _, id in ipairs(ids) do
        local st = hgetall(c.P .. 'st:' .. id)
        if st.by then
            local view = standing_view(id, st)
            view.referral = nil
            out[#out + 1] = view
        end
    end
    return {result = {standing = out}}
end

-- Every active standing search with its packed referral, or one (args: standing): the
-- daemons keep them in memory to match freed units against.
local function standing_load(keys, argv)
    local c, a = ctx(keys, argv)
    local ids = a.standing and {a.standing} or
        redis.call('ZRANGEBYSCORE', c.P .. 'standing', c.now, '+inf')
    local out = {}
    for _, id in ipairs(ids) do
        local st = hgetall(c.P .. 'st:' .. id)
        if st.state == 'active' then out[#out + 1] = standing_view(id, st) end
    end
    return cmsgpack.pack({result = {standing = out}})
end

-- A daemon found a freed unit that fits a standing search. The first daemon to report a
-- unit at a version sends the match event; the others are told it was sent.
-- args: standing, shelter, unit, version.
local function standing_match(keys, argv)
    local c, a = ctx(keys, argv)
    local st = hgetall(c.P .. 'st:' .. a.standing)
    if st.state ~= 'active' then
        return cmsgpack.pack({result = {sent = false}})
    end
    local dk = c.P .. 'stm:' .. a.standing .. ':' .. a.shelter .. ':' .. a.unit .. ':' ..
        tostring(a.version)
    if not redis.call('SET', dk, 1, 'NX', 'EX', 3600) then
        return cmsgpack.pack({result = {sent = false}})
    end
    local n = redis.call('HINCRBY', c.P .. 'st:' .. a.standing, 'matches', 1)
    if n == 1 then
        stat(c, 'standing:matched')
        redis.call('HINCRBY', c.P .. 'stats', 'standing:wait_ms',
                   c.now - tonumber(st.created_at))
    end
    emit(c, 'match', {standing = a.standing, shelter = a.shelter, unit = a.unit,
                      municipality = st.municipality, by = st.by})
    return cmsgpack.pack({result = {sent = true}})
end

------------------------------------------------------------------------------------------
-- The event log, read back

-- A stream id "ms-seq" as two numbers, to compare.
local function id_parts(id)
    local ms, seq = string.match(id or '', '^(%d+)-(%d+)$')
    return tonumber(ms), tonumber(seq)
end

local function id_before(a, b)
    local am, as = id_parts(a)
    local bm, bs = id_parts(b)
    return am < bm or (am == bm and as < bs)
end

-- Events after a sequence (args: since = "ms-seq") or from a time (since = ms), at most
-- `limit`. gone = true when the log no longer holds what the caller missed.
local function events_read(keys, argv)
    local c, a = ctx(keys, argv)
    local key = c.P .. 'log'
    local start
    if type(a.since) == 'string' then
        start = '(' .. a.since
    else
        start = string.format('%d', tonumber(a.since) or 0)
    end
    local floor = redis.call('GET', c.P .. 'log:floor')
    local since = type(a.since) == 'string' and a.since or
        string.format('%d-0', tonumber(a.since) or 0)
    if floor and id_before(since, floor) then
        return cmsgpack.pack({result = {gone = true}})
    end
    local batch = redis.call('XRANGE', key, start, '+', 'COUNT', tonumber(a.limit) or 1000)
    local out = {}
    for _, e in ipairs(batch) do
        local ev = {seq = e[1]}
        for i = 1, #e[2], 2 do ev[e[2][i]] = e[2][i + 1] end
        out[#out + 1] = ev
    end
    return cmsgpack.pack({result = {gone = false, events = out}})
end

------------------------------------------------------------------------------------------
-- One function per op of the protocol (fristad_<op with '.' as '_'>), named in the op's row
-- of daemon/ops.c, and the daemon's own upkeep.

local function reg(name, fn, readonly)
    redis.register_function({function_name = name, callback = fn,
                             flags = readonly and {'no-writes'} or {}})
end

reg('fristad_shelter_add', write(shelter_add))
reg('fristad_shelter_update', write(shelter_update))
reg('fristad_shelter_retire', write(shelter_retire))
reg('fristad_unit_add', write(unit_add))
reg('fristad_unit_update', write(unit_update))
reg('fristad_unit_remove', write(unit_remove))
reg('fristad_vacancy_set', write(vacancy_set))
reg('fristad_vacancy_confirm', write(shelter_mark))
reg('fristad_intake_pause', write(shelter_mark))
reg('fristad_intake_resume', write(shelter_mark))
reg('fristad_hold', write(hold))
reg('fristad_hold_accept', write(hold_accept))
reg('fristad_hold_release', write(hold_release))
reg('fristad_hold_decline', write(hold_decline))
reg('fristad_hold_confirm', write(hold_confirm))
reg('fristad_placement_discharge', write(placement_discharge))
reg('fristad_holds_list', read(list), true)
reg('fristad_placements_list', read(list), true)
reg('fristad_audit', read(audit_read), true)
reg('fristad_stats', read(stats_read), true)
reg('fristad_followup', read(followup_read), true)
reg('fristad_standing_add', write(standing_add))
reg('fristad_standing_cancel', write(standing_cancel))
reg('fristad_standing_list', read(standing_list), true)

reg('fristad_sweep', sweep_all)
reg('fristad_aof_rewritten', aof_rewritten)
reg('fristad_archived', archived)
reg('fristad_search_stat', search_stat)
reg('fristad_audit_note', audit_note)
reg('fristad_migrate', migrate)
reg('fristad_snapshots', snapshots)
reg('fristad_standing_load', standing_load, true)
reg('fristad_standing_match', standing_match)
reg('fristad_events_read', events_read, true)
