#!lua name=fristad_bench
--[[
A registry for benchmarks and long runs, written straight into Redis in the layout of
daemon/fristad.lua (schema 2), so that a million shelters take seconds rather than the hours
their store functions would. Only tests load this library; the daemon never calls it.

FCALL bench_populate 1 <prefix>ver <args>, args a msgpack map:
  first, count   shelters b<first> .. b<first+count-1>
  units          units per shelter
  now            ms: updated_at is up to 30 hours before it (a fifth of the shelters stale)
  codes          the municipality codes to place shelters in (a third go to the first ten)
  seed
Shelters get no stored snapshot: the first daemon to load them makes them (dump_page).
]]

local LANGS = {'en', 'ar', 'fi', 'so', 'fa', 'ti', 'pl'}
local INTAKE = {'mon-fri 08:00-22:00,sat-sun 10:00-18:00', 'daily 18:00-08:00'}

local function pick(weights)
    local r, acc = math.random(), 0
    for i, w in ipairs(weights) do
        acc = acc + w
        if r < acc then return i end
    end
    return #weights
end

local function populate(keys, argv)
    local a = cmsgpack.unpack(argv[1])
    local P = string.sub(keys[1], 1, -4)
    math.randomseed(tonumber(a.seed) + tonumber(a.first))
    local codes, now = a.codes, tonumber(a.now)
    local v = tonumber(redis.call('GET', P .. 'ver') or '0')
    for i = a.first, a.first + a.count - 1 do
        local sid = 'b' .. i
        local mun = math.random() < 0.33 and codes[math.random(10)] or codes[math.random(#codes)]
        local groups = 'women'
        if math.random() < 0.1 then groups = groups .. ',hbtqi' end
        if math.random() < 0.05 then groups = 'men' end
        local langs = {'sv'}
        for _ = 1, math.random(0, 2) do langs[#langs + 1] = LANGS[math.random(#LANGS)] end
        if langs[2] and langs[2] == langs[3] then langs[3] = nil end
        local intake = '24/7'
        local k = pick({0.7, 0.2, 0.1})
        if k > 1 then intake = INTAKE[k - 1] end
        v = v + 1
        redis.call('HSET', P .. 's:' .. sid, 'name', 'Shelter ' .. i, 'kind', 'kvinnojour',
                   'municipality', mun, 'protection', pick({0.5, 0.35, 0.15}),
                   'phone', '08-555 ' .. string.format('%06d', i % 1000000), 'groups', groups,
                   'max_children', ({-1, 2, 3, 4, 6})[math.random(5)],
                   'boys_max_age', ({-1, 12, 15, 17})[math.random(4)],
                   'pets', math.random() < 0.3 and 1 or 0,
                   'substance', math.random() < 0.15 and 1 or 0,
                   'languages', table.concat(langs, ','), 'intake_hours', intake,
                   'paused', math.random() < 0.03 and 1 or 0, 'retired', 0,
                   'updated_at', now - math.random(0, 30 * 3600000), 'created_at', now,
                   'version', v)
        redis.call('SADD', P .. 'shelters', sid)
        for u = 1, a.units do
            local uid = 'u' .. u
            redis.call('SADD', P .. 'u:' .. sid, uid)
            local state = ({'free', 'occupied', 'closed'})[pick({0.25, 0.6, 0.15})]
            redis.call('HSET', P .. 'unit:' .. sid .. ':' .. uid,
                       'beds', ({1, 2, 3, 4, 5, 6})[pick({0.2, 0.25, 0.25, 0.15, 0.1, 0.05})],
                       'accessible', math.random() < 0.2 and 1 or 0, 'state', state,
                       'changed_at', now)
        end
    end
    redis.call('SET', P .. 'ver', v)
    redis.call('SET', P .. 'schema', 2)
    return v
end

redis.register_function('bench_populate', populate)
