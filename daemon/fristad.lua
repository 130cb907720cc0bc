#!lua name=fristad
--[[
Fristad's store: every write is one of these functions, executed atomically by Redis.

Rules every writing function follows, in this order:
  1. sweep expired holds (bounded), so no function ever sees a hold past its expiry as live;
  2. read and check every precondition (existence, ownership, state) before the first write,
     because Redis rolls nothing back;
  3. write, bump the global version, and publish the changed shelter's whole snapshot;
  4. append an audit entry (refusals too) and return one msgpack map:
     {r = result} or {err = code, msg = message}, plus s = snapshot when a shelter changed.

Calling convention: KEYS[1] is "<prefix>ver", the version counter; every other key is derived
from the prefix (all keys share one hash tag). ARGV[1] is the principal "role:id", ARGV[2] the
audit retention and ARGV[3] the reference retention, both in ms; op arguments follow.

Key layout under the prefix P:
  ver                     global version, INCR on every change to a shelter
  shelters                set of shelter ids (retired ones too)
  s:<sid>                 hash: name kind mun prot phone groups maxch boys pets subst langs
                                paused retired upd created v
  u:<sid>                 set of unit ids of the shelter
  unit:<sid>:<uid>        hash: beds acc state [hold] [placement] chg
  hold:<hid>              hash: shelter unit ref by mun state created expires [closed]
                                [reason] [placement]
  holds, holds:s:<sid>, holds:m:<mun>   zsets of hold ids by creation time
  holds:open              zset of live hold ids by expiry time
  pl:<pid>                hash: hold shelter unit ref by mun state placed [discharged]
  pls, pls:s:<sid>, pls:m:<mun>         zsets of placement ids by placement time
  purge                   zset "h:<hid>" / "p:<pid>" by the time their record is deleted
  idem:<principal>:<key>  "<hid>|<shelter>|<unit>|<ref>", 24 h
  stats                   hash of counters that outlive the records
  audit                   stream of audit entries
  events                  pub/sub channel of {v, s} snapshots
]]

local SWEEP_BATCH = 100
local IDEM_TTL_S = 86400

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

local function ctx(keys, args)
    local c = {}
    c.P = string.sub(keys[1], 1, -4)
    c.now = now_ms()
    c.who = args[1]
    c.role, c.id = string.match(args[1], '^([^:]+):(.+)$')
    c.audit_ret = tonumber(args[2]) or 0
    c.ref_ret = tonumber(args[3]) or 0
    return c
end

local function audit(c, op, result, target)
    local entry = {'XADD', c.P .. 'audit', 'MINID', '~', tostring(c.now - c.audit_ret), '*',
                   'principal', c.who, 'op', op, 'result', result}
    if target then
        for _, k in ipairs({'shelter', 'unit', 'hold', 'placement', 'phone'}) do
            if target[k] and target[k] ~= '' then
                entry[#entry + 1] = k
                entry[#entry + 1] = target[k]
            end
        end
    end
    redis.call(unpack(entry))
end

local function refuse(c, op, code, msg, target)
    audit(c, op, code, target)
    return cmsgpack.pack({err = code, msg = msg})
end

local function snapshot(c, sid)
    local h = hgetall(c.P .. 's:' .. sid)
    local ids = redis.call('SMEMBERS', c.P .. 'u:' .. sid)
    table.sort(ids)
    local units = {}
    for _, uid in ipairs(ids) do
        local u = hgetall(c.P .. 'unit:' .. sid .. ':' .. uid)
        units[#units + 1] = {
            id = uid, beds = tonumber(u.beds), acc = u.acc == '1', state = u.state,
            held = u.hold ~= nil, placed = u.placement ~= nil,
        }
    end
    return {
        id = sid, name = h.name, kind = h.kind, mun = h.mun, prot = tonumber(h.prot),
        phone = h.phone, groups = h.groups, maxch = tonumber(h.maxch), boys = tonumber(h.boys),
        pets = h.pets == '1', subst = h.subst == '1', langs = h.langs,
        paused = h.paused == '1', retired = h.retired == '1', upd = tonumber(h.upd),
        v = tonumber(h.v), units = units,
    }
end

-- Bumps the version, publishes the shelter's snapshot and returns it.
local function changed(c, sid)
    local v = redis.call('INCR', c.P .. 'ver')
    redis.call('HSET', c.P .. 's:' .. sid, 'v', v)
    local snap = snapshot(c, sid)
    redis.call('PUBLISH', c.P .. 'events', cmsgpack.pack({v = v, s = snap}))
    return snap
end

local function stat(c, field)
    redis.call('HINCRBY', c.P .. 'stats', field, 1)
end

-- Closes a live hold: its unit is no longer reserved by it.
local function close_hold(c, hid, h, state, extra)
    local hk = c.P .. 'hold:' .. hid
    redis.call('HSET', hk, 'state', state, 'closed', c.now)
    if extra then
        for k, v in pairs(extra) do
            redis.call('HSET', hk, k, v)
        end
    end
    redis.call('ZREM', c.P .. 'holds:open', hid)
    local uk = c.P .. 'unit:' .. h.shelter .. ':' .. h.unit
    if redis.call('HGET', uk, 'hold') == hid then
        redis.call('HDEL', uk, 'hold')
    end
    redis.call('ZADD', c.P .. 'purge', c.now + c.ref_ret, 'h:' .. hid)
    stat(c, 'holds:' .. state)
end

-- Expires one live hold whose time has passed.
local function expire(c, hid, h)
    local system = {P = c.P, now = c.now, who = 'system:sweep', audit_ret = c.audit_ret,
                    ref_ret = c.ref_ret}
    close_hold(system, hid, h, 'expired')
    changed(system, h.shelter)
    audit(system, 'hold.expire', 'ok', {shelter = h.shelter, unit = h.unit, hold = hid})
end

local function past_expiry(c, h)
    return h.state == 'held' and tonumber(h.expires) <= c.now
end

-- Expires every hold whose time has come, at most `limit` of them per call. A function that
-- meets a hold the sweep has not reached yet expires it itself (past_expiry), so the batch
-- limit never lets a hold outlive its time.
local function sweep(c, limit)
    local due = redis.call('ZRANGEBYSCORE', c.P .. 'holds:open', '-inf', c.now, 'LIMIT', 0, limit)
    for _, hid in ipairs(due) do
        local h = hgetall(c.P .. 'hold:' .. hid)
        if h.shelter and h.state == 'held' then
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

local function hold_view(c, hid, h)
    local state = h.state
    if state == 'held' and tonumber(h.expires) <= c.now then
        state = 'expired'
    end
    local v = {
        hold = hid, shelter = h.shelter, unit = h.unit, ref = h.ref, by = h.by, state = state,
        created_at = tonumber(h.created), expires_at = tonumber(h.expires),
    }
    if h.mun and h.mun ~= '' then v.municipality = h.mun end
    if h.closed then v.closed_at = tonumber(h.closed) end
    if h.reason then v.reason = h.reason end
    if h.placement then v.placement = h.placement end
    return v
end

local function placement_view(pid, p)
    local v = {
        placement = pid, hold = p.hold, shelter = p.shelter, unit = p.unit, ref = p.ref,
        by = p.by, state = p.state, placed_at = tonumber(p.placed),
    }
    if p.mun and p.mun ~= '' then v.municipality = p.mun end
    if p.discharged then v.discharged_at = tonumber(p.discharged) end
    return v
end

local function shelter_exists(c, sid)
    return redis.call('EXISTS', c.P .. 's:' .. sid) == 1
end

-- A shelter principal may act only on its own shelter.
local function own_shelter(c, sid)
    return c.role == 'shelter' and c.id == sid
end

------------------------------------------------------------------------------------------
-- Registry (admin)

local SHELTER_FIELDS = {name = true, kind = true, mun = true, prot = true, phone = true,
                        groups = true, maxch = true, boys = true, pets = true, subst = true,
                        langs = true}

-- ARGV: 4 mode ("add"|"update"), 5 sid, then field/value pairs.
local function shelter_put(keys, args)
    local c = ctx(keys, args)
    sweep(c, SWEEP_BATCH)
    local mode, sid = args[4], args[5]
    local op = 'shelter.' .. mode
    local t = {shelter = sid}
    if c.role ~= 'admin' then
        return refuse(c, op, 'forbidden', 'only an admin registers shelters', t)
    end
    local fields = {}
    for i = 6, #args, 2 do
        if not SHELTER_FIELDS[args[i]] then
            return refuse(c, op, 'internal', 'unknown shelter field', t)
        end
        fields[#fields + 1] = args[i]
        fields[#fields + 1] = args[i + 1]
    end
    local sk = c.P .. 's:' .. sid
    if mode == 'add' then
        if shelter_exists(c, sid) then
            return refuse(c, op, 'conflict', 'a shelter with this id already exists', t)
        end
        redis.call('HSET', sk, 'groups', 'women', 'maxch', -1, 'boys', -1, 'pets', 0, 'subst', 0,
                   'langs', '', 'paused', 0, 'retired', 0, 'upd', c.now, 'created', c.now)
        redis.call('SADD', c.P .. 'shelters', sid)
    else
        if not shelter_exists(c, sid) then
            return refuse(c, op, 'not_found', 'no shelter with this id', t)
        end
        if redis.call('HGET', sk, 'retired') == '1' then
            return refuse(c, op, 'conflict', 'the shelter is retired', t)
        end
    end
    if #fields > 0 then
        redis.call('HSET', sk, unpack(fields))
    end
    local snap = changed(c, sid)
    audit(c, op, 'ok', t)
    return cmsgpack.pack({r = {}, s = snap})
end

-- ARGV: 4 sid.
local function shelter_retire(keys, args)
    local c = ctx(keys, args)
    sweep(c, SWEEP_BATCH)
    local sid = args[4]
    local t = {shelter = sid}
    if c.role ~= 'admin' then
        return refuse(c, 'shelter.retire', 'forbidden', 'only an admin retires shelters', t)
    end
    if not shelter_exists(c, sid) then
        return refuse(c, 'shelter.retire', 'not_found', 'no shelter with this id', t)
    end
    local sk = c.P .. 's:' .. sid
    if redis.call('HGET', sk, 'retired') == '1' then
        return refuse(c, 'shelter.retire', 'conflict', 'the shelter is already retired', t)
    end
    for _, uid in ipairs(redis.call('SMEMBERS', c.P .. 'u:' .. sid)) do
        local uk = c.P .. 'unit:' .. sid .. ':' .. uid
        if live_hold(c, uk) or redis.call('HEXISTS', uk, 'placement') == 1 then
            return refuse(c, 'shelter.retire', 'conflict',
                          'the shelter has open holds or active placements; close them first', t)
        end
    end
    redis.call('HSET', sk, 'retired', 1)
    local snap = changed(c, sid)
    audit(c, 'shelter.retire', 'ok', t)
    return cmsgpack.pack({r = {}, s = snap})
end

-- ARGV: 4 mode ("add"|"update"), 5 sid, 6 uid, 7 beds or "", 8 accessible "1"/"0"/"".
local function unit_put(keys, args)
    local c = ctx(keys, args)
    sweep(c, SWEEP_BATCH)
    local mode, sid, uid, beds, acc = args[4], args[5], args[6], args[7], args[8]
    local op = 'unit.' .. mode
    local t = {shelter = sid, unit = uid}
    if c.role ~= 'admin' then
        return refuse(c, op, 'forbidden', 'only an admin registers units', t)
    end
    if not shelter_exists(c, sid) then
        return refuse(c, op, 'not_found', 'no shelter with this id', t)
    end
    if redis.call('HGET', c.P .. 's:' .. sid, 'retired') == '1' then
        return refuse(c, op, 'conflict', 'the shelter is retired', t)
    end
    local uk = c.P .. 'unit:' .. sid .. ':' .. uid
    local exists = redis.call('EXISTS', uk) == 1
    if mode == 'add' then
        if exists then
            return refuse(c, op, 'conflict', 'the shelter already has a unit with this id', t)
        end
        redis.call('HSET', uk, 'beds', beds, 'acc', acc == '1' and 1 or 0, 'state', 'closed',
                   'chg', c.now)
        redis.call('SADD', c.P .. 'u:' .. sid, uid)
    else
        if not exists then
            return refuse(c, op, 'not_found', 'the shelter has no unit with this id', t)
        end
        if beds ~= '' then redis.call('HSET', uk, 'beds', beds) end
        if acc ~= '' then redis.call('HSET', uk, 'acc', acc) end
    end
    local snap = changed(c, sid)
    audit(c, op, 'ok', t)
    return cmsgpack.pack({r = {}, s = snap})
end

-- ARGV: 4 sid, 5 uid.
local function unit_remove(keys, args)
    local c = ctx(keys, args)
    sweep(c, SWEEP_BATCH)
    local sid, uid = args[4], args[5]
    local t = {shelter = sid, unit = uid}
    if c.role ~= 'admin' then
        return refuse(c, 'unit.remove', 'forbidden', 'only an admin removes units', t)
    end
    local uk = c.P .. 'unit:' .. sid .. ':' .. uid
    if not shelter_exists(c, sid) or redis.call('EXISTS', uk) == 0 then
        return refuse(c, 'unit.remove', 'not_found', 'no such shelter or unit', t)
    end
    if live_hold(c, uk) or redis.call('HEXISTS', uk, 'placement') == 1 then
        return refuse(c, 'unit.remove', 'conflict', 'the unit is held or has an active placement', t)
    end
    redis.call('DEL', uk)
    redis.call('SREM', c.P .. 'u:' .. sid, uid)
    local snap = changed(c, sid)
    audit(c, 'unit.remove', 'ok', t)
    return cmsgpack.pack({r = {}, s = snap})
end

------------------------------------------------------------------------------------------
-- Vacancies (the shelter itself)

-- ARGV: 4 sid, 5 uid, 6 state.
local function vacancy_set(keys, args)
    local c = ctx(keys, args)
    sweep(c, SWEEP_BATCH)
    local sid, uid, state = args[4], args[5], args[6]
    local t = {shelter = sid, unit = uid}
    if not own_shelter(c, sid) then
        return refuse(c, 'vacancy.set', 'forbidden', 'a shelter may change only its own units', t)
    end
    local uk = c.P .. 'unit:' .. sid .. ':' .. uid
    if not shelter_exists(c, sid) or redis.call('EXISTS', uk) == 0 then
        return refuse(c, 'vacancy.set', 'not_found', 'no such shelter or unit', t)
    end
    local hold, pl = live_hold(c, uk), redis.call('HGET', uk, 'placement')
    if hold then
        return refuse(c, 'vacancy.set', 'conflict',
                      'the unit is held for a referral; confirm or decline the hold instead', t)
    end
    if pl then
        return refuse(c, 'vacancy.set', 'conflict',
                      'the unit has an active placement; record a discharge instead', t)
    end
    redis.call('HSET', uk, 'state', state, 'chg', c.now)
    redis.call('HSET', c.P .. 's:' .. sid, 'upd', c.now)
    local snap = changed(c, sid)
    audit(c, 'vacancy.set', 'ok', t)
    return cmsgpack.pack({r = {}, s = snap})
end

-- ARGV: 4 sid, 5 what ("confirm" | "pause" | "resume").
local function shelter_mark(keys, args)
    local c = ctx(keys, args)
    sweep(c, SWEEP_BATCH)
    local sid, what = args[4], args[5]
    local op = what == 'confirm' and 'vacancy.confirm' or ('intake.' .. what)
    local t = {shelter = sid}
    if not own_shelter(c, sid) then
        return refuse(c, op, 'forbidden', 'a shelter may act only on itself', t)
    end
    if not shelter_exists(c, sid) then
        return refuse(c, op, 'not_found', 'no shelter with this id', t)
    end
    local sk = c.P .. 's:' .. sid
    if redis.call('HGET', sk, 'retired') == '1' then
        return refuse(c, op, 'conflict', 'the shelter is retired', t)
    end
    if what == 'pause' then
        redis.call('HSET', sk, 'paused', 1)
    elseif what == 'resume' then
        redis.call('HSET', sk, 'paused', 0)
    end
    redis.call('HSET', sk, 'upd', c.now)
    local snap = changed(c, sid)
    audit(c, op, 'ok', t)
    return cmsgpack.pack({r = {}, s = snap})
end

------------------------------------------------------------------------------------------
-- Holds and placements

-- ARGV: 4 on-behalf municipality or "", 5 sid, 6 uid, 7 ref, 8 new hold id, 9 ttl ms,
--       10 idempotency key or "".
local function hold(keys, args)
    local c = ctx(keys, args)
    sweep(c, SWEEP_BATCH)
    local mun, sid, uid, ref, hid, ttl, idem = args[4], args[5], args[6], args[7], args[8],
        tonumber(args[9]), args[10]
    local t = {shelter = sid, unit = uid}
    if c.role ~= 'social' and c.role ~= 'oncall' then
        return refuse(c, 'hold', 'forbidden', 'only social services and on-call services hold units', t)
    end
    if c.role == 'social' and mun ~= c.id then
        return refuse(c, 'hold', 'forbidden', 'social services hold units for their own municipality', t)
    end
    -- The key remembers a digest of the request, never the reference itself.
    local fingerprint = redis.sha1hex(mun .. '|' .. sid .. '|' .. uid .. '|' .. ref)
    local ik = c.P .. 'idem:' .. c.who .. ':' .. idem
    if idem ~= '' then
        local prev = redis.call('GET', ik)
        if prev then
            local phid, fp = string.match(prev, '^([^|]*)|(.*)$')
            if fp ~= fingerprint then
                return refuse(c, 'hold', 'conflict',
                              'this idempotency key was already used for a different hold', t)
            end
            local h = hgetall(c.P .. 'hold:' .. phid)
            if not h.shelter then
                return refuse(c, 'hold', 'conflict',
                              'this idempotency key belongs to a hold that is no longer kept', t)
            end
            local phone = redis.call('HGET', c.P .. 's:' .. sid, 'phone')
            t.hold = phid
            t.phone = 'disclosed'
            audit(c, 'hold', 'ok', t)
            return cmsgpack.pack({r = {hold = phid, shelter = sid, unit = uid,
                                       expires_at = tonumber(h.expires), phone = phone},
                                  replay = true})
        end
    end
    local sk = c.P .. 's:' .. sid
    local retired, paused, phone = unpack(redis.call('HMGET', sk, 'retired', 'paused', 'phone'))
    if not retired then
        return refuse(c, 'hold', 'not_found', 'no shelter with this id', t)
    end
    if retired == '1' then
        return refuse(c, 'hold', 'conflict', 'the shelter is retired', t)
    end
    if paused == '1' then
        return refuse(c, 'hold', 'conflict', 'the shelter has paused its intake', t)
    end
    local uk = c.P .. 'unit:' .. sid .. ':' .. uid
    local state, pl = unpack(redis.call('HMGET', uk, 'state', 'placement'))
    if not state then
        return refuse(c, 'hold', 'not_found', 'the shelter has no unit with this id', t)
    end
    if live_hold(c, uk) then
        return refuse(c, 'hold', 'conflict', 'the unit is already held for another referral', t)
    end
    if pl or state ~= 'free' then
        return refuse(c, 'hold', 'conflict', 'the unit is not free', t)
    end
    local hk = c.P .. 'hold:' .. hid
    if redis.call('EXISTS', hk) == 1 then
        return refuse(c, 'hold', 'internal', 'hold id collision; retry', t)
    end
    local expires = c.now + ttl
    redis.call('HSET', hk, 'shelter', sid, 'unit', uid, 'ref', ref, 'by', c.who, 'mun', mun,
               'state', 'held', 'created', c.now, 'expires', expires)
    if idem ~= '' then
        redis.call('HSET', hk, 'idem', ik)
    end
    redis.call('HSET', uk, 'hold', hid)
    redis.call('ZADD', c.P .. 'holds:open', expires, hid)
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
    local snap = changed(c, sid)
    t.hold = hid
    t.phone = 'disclosed'
    audit(c, 'hold', 'ok', t)
    return cmsgpack.pack({r = {hold = hid, shelter = sid, unit = uid, expires_at = expires,
                               phone = phone}, s = snap})
end

-- Loads a hold and checks that the principal may act on it in the given way.
-- Returns h, nil or nil, refusal.
local function hold_for(c, op, hid, who_may)
    local h = hgetall(c.P .. 'hold:' .. hid)
    local t = {hold = hid, shelter = h.shelter, unit = h.unit}
    if not h.shelter then
        return nil, refuse(c, op, 'not_found', 'no hold with this id', t)
    end
    if who_may == 'holder' then
        if not ((c.role == 'social' and h.mun == c.id) or c.role == 'oncall') then
            return nil, refuse(c, op, 'forbidden', 'only the municipality that made the hold, or on-call services, may release it', t)
        end
    elseif not own_shelter(c, h.shelter) then
        return nil, refuse(c, op, 'forbidden', 'only the shelter the hold is on may do this', t)
    end
    if past_expiry(c, h) then
        expire(c, hid, h)
        return nil, refuse(c, op, 'conflict', 'the hold has expired', t)
    end
    if h.state ~= 'held' then
        return nil, refuse(c, op, 'conflict', 'the hold is ' .. h.state .. ', not held', t)
    end
    return h, nil
end

-- ARGV: 4 hold id.
local function hold_release(keys, args)
    local c = ctx(keys, args)
    sweep(c, SWEEP_BATCH)
    local hid = args[4]
    local h, refusal = hold_for(c, 'hold.release', hid, 'holder')
    if not h then return refusal end
    close_hold(c, hid, h, 'released')
    local snap = changed(c, h.shelter)
    audit(c, 'hold.release', 'ok', {hold = hid, shelter = h.shelter, unit = h.unit})
    return cmsgpack.pack({r = {hold = hold_view(c, hid, hgetall(c.P .. 'hold:' .. hid))}, s = snap})
end

-- ARGV: 4 hold id, 5 reason.
local function hold_decline(keys, args)
    local c = ctx(keys, args)
    sweep(c, SWEEP_BATCH)
    local hid, reason = args[4], args[5]
    local h, refusal = hold_for(c, 'hold.decline', hid, 'shelter')
    if not h then return refusal end
    close_hold(c, hid, h, 'declined', {reason = reason})
    local snap = changed(c, h.shelter)
    audit(c, 'hold.decline', 'ok', {hold = hid, shelter = h.shelter, unit = h.unit})
    return cmsgpack.pack({r = {hold = hold_view(c, hid, hgetall(c.P .. 'hold:' .. hid))}, s = snap})
end

-- ARGV: 4 hold id, 5 new placement id.
local function hold_confirm(keys, args)
    local c = ctx(keys, args)
    sweep(c, SWEEP_BATCH)
    local hid, pid = args[4], args[5]
    local h, refusal = hold_for(c, 'hold.confirm', hid, 'shelter')
    if not h then return refusal end
    local pk = c.P .. 'pl:' .. pid
    if redis.call('EXISTS', pk) == 1 then
        return refuse(c, 'hold.confirm', 'internal', 'placement id collision; retry', {hold = hid})
    end
    close_hold(c, hid, h, 'confirmed', {placement = pid})
    redis.call('HSET', pk, 'hold', hid, 'shelter', h.shelter, 'unit', h.unit, 'ref', h.ref,
               'by', h.by, 'mun', h.mun, 'state', 'active', 'placed', c.now)
    local uk = c.P .. 'unit:' .. h.shelter .. ':' .. h.unit
    redis.call('HSET', uk, 'state', 'occupied', 'placement', pid, 'chg', c.now)
    redis.call('HSET', c.P .. 's:' .. h.shelter, 'upd', c.now)
    redis.call('ZADD', c.P .. 'pls', c.now, pid)
    redis.call('ZADD', c.P .. 'pls:s:' .. h.shelter, c.now, pid)
    if h.mun ~= '' then
        redis.call('ZADD', c.P .. 'pls:m:' .. h.mun, c.now, pid)
    end
    stat(c, 'placements:made')
    local snap = changed(c, h.shelter)
    audit(c, 'hold.confirm', 'ok', {hold = hid, placement = pid, shelter = h.shelter, unit = h.unit})
    return cmsgpack.pack({r = {hold = hold_view(c, hid, hgetall(c.P .. 'hold:' .. hid)),
                               placement = placement_view(pid, hgetall(pk))}, s = snap})
end

-- ARGV: 4 placement id.
local function placement_discharge(keys, args)
    local c = ctx(keys, args)
    sweep(c, SWEEP_BATCH)
    local pid = args[4]
    local pk = c.P .. 'pl:' .. pid
    local p = hgetall(pk)
    local t = {placement = pid, shelter = p.shelter, unit = p.unit}
    if not p.shelter then
        return refuse(c, 'placement.discharge', 'not_found', 'no placement with this id', t)
    end
    if not own_shelter(c, p.shelter) then
        return refuse(c, 'placement.discharge', 'forbidden',
                      'only the shelter of the placement may record its discharge', t)
    end
    if p.state ~= 'active' then
        return refuse(c, 'placement.discharge', 'conflict', 'the placement is already discharged', t)
    end
    redis.call('HSET', pk, 'state', 'discharged', 'discharged', c.now)
    local uk = c.P .. 'unit:' .. p.shelter .. ':' .. p.unit
    if redis.call('HGET', uk, 'placement') == pid then
        redis.call('HDEL', uk, 'placement')
        redis.call('HSET', uk, 'state', 'free', 'chg', c.now)
    end
    redis.call('HSET', c.P .. 's:' .. p.shelter, 'upd', c.now)
    redis.call('ZADD', c.P .. 'purge', c.now + c.ref_ret, 'p:' .. pid)
    stat(c, 'placements:discharged')
    local snap = changed(c, p.shelter)
    audit(c, 'placement.discharge', 'ok', t)
    return cmsgpack.pack({r = {placement = placement_view(pid, hgetall(pk))}, s = snap})
end

------------------------------------------------------------------------------------------
-- Upkeep and reads

-- Expires holds and deletes closed records whose reference retention has passed.
local function sweep_all(keys, args)
    local c = ctx(keys, args)
    local expired = sweep(c, SWEEP_BATCH)
    local due = redis.call('ZRANGEBYSCORE', c.P .. 'purge', '-inf', c.now, 'LIMIT', 0, SWEEP_BATCH)
    for _, item in ipairs(due) do
        local kind, id = string.sub(item, 1, 1), string.sub(item, 3)
        if kind == 'h' then
            local k = c.P .. 'hold:' .. id
            local sid, mun, ik = unpack(redis.call('HMGET', k, 'shelter', 'mun', 'idem'))
            -- The key may since have been reused for a newer hold: delete it only if it is ours.
            if ik then
                local cur = redis.call('GET', ik)
                if cur and string.sub(cur, 1, #id + 1) == id .. '|' then
                    redis.call('DEL', ik)
                end
            end
            if sid then
                redis.call('ZREM', c.P .. 'holds:s:' .. sid, id)
            end
            if mun and mun ~= '' then
                redis.call('ZREM', c.P .. 'holds:m:' .. mun, id)
            end
            redis.call('ZREM', c.P .. 'holds', id)
            redis.call('DEL', k)
        else
            local k = c.P .. 'pl:' .. id
            local sid, mun = unpack(redis.call('HMGET', k, 'shelter', 'mun'))
            if sid then
                redis.call('ZREM', c.P .. 'pls:s:' .. sid, id)
            end
            if mun and mun ~= '' then
                redis.call('ZREM', c.P .. 'pls:m:' .. mun, id)
            end
            redis.call('ZREM', c.P .. 'pls', id)
            redis.call('DEL', k)
        end
        redis.call('ZREM', c.P .. 'purge', item)
    end
    -- Exact, not '~': an approximate trim removes only whole stream nodes, so a small stream
    -- would keep its old entries for ever.
    redis.call('XTRIM', c.P .. 'audit', 'MINID', tostring(c.now - c.audit_ret))
    return cmsgpack.pack({r = {expired = expired, purged = #due}})
end

-- Every shelter's snapshot and the version they reflect.
local function dump(keys, args)
    local P = string.sub(keys[1], 1, -4)
    local c = {P = P}
    local ids = redis.call('SMEMBERS', P .. 'shelters')
    table.sort(ids)
    local all = {}
    for _, sid in ipairs(ids) do
        all[#all + 1] = snapshot(c, sid)
    end
    return cmsgpack.pack({v = tonumber(redis.call('GET', P .. 'ver') or '0'), shelters = all})
end

local LIST_MAX = 500

-- ARGV: 4 "holds" | "placements".
local function list(keys, args)
    local c = ctx(keys, args)
    local what = args[4]
    local base = what == 'holds' and 'holds' or 'pls'
    local key
    if c.role == 'shelter' then
        key = c.P .. base .. ':s:' .. c.id
    elseif c.role == 'social' then
        key = c.P .. base .. ':m:' .. c.id
    elseif c.role == 'oncall' then
        key = c.P .. base
    else
        return cmsgpack.pack({err = 'forbidden', msg = 'this role has no holds or placements'})
    end
    local out = {}
    for _, id in ipairs(redis.call('ZREVRANGE', key, 0, LIST_MAX - 1)) do
        if what == 'holds' then
            local h = hgetall(c.P .. 'hold:' .. id)
            if h.shelter then out[#out + 1] = hold_view(c, id, h) end
        else
            local p = hgetall(c.P .. 'pl:' .. id)
            if p.shelter then out[#out + 1] = placement_view(id, p) end
        end
    end
    return cmsgpack.pack({r = {[what] = out}})
end

-- ARGV: 4 since ms, 5 principal filter or "", 6 shelter filter or "", 7 limit.
local function audit_read(keys, args)
    local c = ctx(keys, args)
    local since, pf, sf, limit = tonumber(args[4]), args[5], args[6], tonumber(args[7])
    local out = {}
    local start = tostring(since)
    local scanned = 0
    while #out < limit and scanned < 20000 do
        local batch = redis.call('XRANGE', c.P .. 'audit', start, '+', 'COUNT', 500)
        if #batch == 0 then break end
        for _, e in ipairs(batch) do
            scanned = scanned + 1
            local id, flat = e[1], e[2]
            local f = {}
            for i = 1, #flat, 2 do f[flat[i]] = flat[i + 1] end
            if (pf == '' or f.principal == pf) and (sf == '' or f.shelter == sf) then
                local entry = {at = tonumber(string.match(id, '^(%d+)')), principal = f.principal,
                               op = f.op, result = f.result}
                for _, k in ipairs({'shelter', 'unit', 'hold', 'placement', 'phone'}) do
                    if f[k] then entry[k] = f[k] end
                end
                out[#out + 1] = entry
                if #out >= limit then break end
            end
            start = '(' .. id
        end
        if #batch < 500 then break end
    end
    return cmsgpack.pack({r = {entries = out}})
end

-- Records a refusal or a disclosure decided in the daemon itself.
-- ARGV: 4 op, 5 result, 6 shelter, 7 unit, 8 hold, 9 placement, 10 phone ("disclosed" or "").
local function audit_note(keys, args)
    local c = ctx(keys, args)
    audit(c, args[4], args[5], {shelter = args[6], unit = args[7], hold = args[8],
                                placement = args[9], phone = args[10]})
    return cmsgpack.pack({r = {}})
end

-- Adds the follow-up counts a daemon gathered since its last call: searches, searches that
-- found nothing, and per reason the no-match searches it ruled units out in.
-- ARGV: 4 searches, 5 no-match searches, then reason/count pairs.
local function search_stat(keys, args)
    local c = ctx(keys, args)
    local k = c.P .. 'stats'
    redis.call('HINCRBY', k, 'searches', tonumber(args[4]))
    redis.call('HINCRBY', k, 'no_match', tonumber(args[5]))
    for i = 6, #args - 1, 2 do
        redis.call('HINCRBY', k, 'reason:' .. args[i], tonumber(args[i + 1]))
    end
    return cmsgpack.pack({r = {}})
end

local function stats_read(keys, args)
    local c = ctx(keys, args)
    local flat = redis.call('HGETALL', c.P .. 'stats')
    local s = {}
    for i = 1, #flat, 2 do s[flat[i]] = tonumber(flat[i + 1]) end
    return cmsgpack.pack({r = s})
end

local function reg(name, fn, readonly)
    redis.register_function({function_name = name, callback = fn,
                             flags = readonly and {'no-writes'} or {}})
end

reg('fristad_shelter_put', shelter_put)
reg('fristad_shelter_retire', shelter_retire)
reg('fristad_unit_put', unit_put)
reg('fristad_unit_remove', unit_remove)
reg('fristad_vacancy_set', vacancy_set)
reg('fristad_shelter_mark', shelter_mark)
reg('fristad_hold', hold)
reg('fristad_hold_release', hold_release)
reg('fristad_hold_decline', hold_decline)
reg('fristad_hold_confirm', hold_confirm)
reg('fristad_placement_discharge', placement_discharge)
reg('fristad_sweep', sweep_all)
reg('fristad_dump', dump, true)
reg('fristad_list', list, true)
reg('fristad_audit_read', audit_read, true)
reg('fristad_audit_note', audit_note)
reg('fristad_search_stat', search_stat)
reg('fristad_stats', stats_read, true)
