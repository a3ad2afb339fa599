package proxy

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// DefaultRedisPrefix begins every key and the channel of RedisBindings,
// unless the store URL names another with ?prefix=.
const DefaultRedisPrefix = "cordon:proxy:"

// RedisOptions configure RedisBindings.
type RedisOptions struct {
	// Poll is how often a node re-reads the revocation log in case it
	// missed a pub/sub message (default 250 ms). A revocation reaches every
	// node within about Poll plus one round trip; the bound promised is
	// 1 s, as for the session store.
	Poll time.Duration
	// Timeout bounds each Redis command made on a request's path (default
	// 500 ms). A Bind that times out fails closed.
	Timeout time.Duration
	// Limits bound the in-process cache of bindings (which is dropped
	// least recently used first and refilled from Redis), and Limits.Idle
	// is the expiry of each binding's key in Redis, pushed back while the
	// session is in use.
	Limits Limits
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// RedisBindings keeps bindings and edge revocations in Redis, shared by
// every proxy node of a site, with an in-process cache in front.
//
// In Redis, under the prefix P:
//
//	P b:FP      the binding of session FP: "epoch|created|device|principal",
//	            written once (the first binding wins, atomically), expiring
//	            Limits.Idle after its last use
//	P revoked   the set of fingerprints revoked at the edge
//	P epoch     the revoke-all counter; a binding made under an older epoch
//	            is revoked
//	P log       the revocation log, a list each node reads from where it
//	            stopped ("*" for revoke-all)
//	P logid     the log's generation, a random name set by its first writer;
//	            a new one means Redis lost the log (a restart without
//	            persistence, a flush), and every node writes back the
//	            revocations it knows
//	P events    the pub/sub channel that tells nodes to read the log now
//
// Bindings never change once made, so a cached one stays right; only
// revocations must travel, and they do twice: a pub/sub message makes every
// node read the log at once, and every node reads it each Poll anyway, so
// a lost message (a reconnect, a node that was paused) cannot keep a
// revoked session alive past the bound.
type RedisBindings struct {
	rdb    *redis.Client
	prefix string
	opt    RedisOptions
	log    *slog.Logger

	tab     *table
	mu      sync.RWMutex // guards revoked and epoch
	revoked map[string]bool
	epoch   int64
	touch   chan touch // keys whose expiry to push back

	pollMu  sync.Mutex // serializes poll; guards lastSeq and logID
	lastSeq int64
	logID   string // the log's generation: it changes when Redis loses it

	sub      *redis.PubSub
	kick     chan struct{}
	stop     chan struct{}
	stopOnce sync.Once
	done     sync.WaitGroup
}

// parseRedisURL splits the proxy's own ?prefix= off a redis:// URL.
func parseRedisURL(raw string) (*redis.Options, string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, "", fmt.Errorf("proxy: redis URL: %w", err)
	}
	q := u.Query()
	prefix := DefaultRedisPrefix
	if q.Has("prefix") {
		prefix = q.Get("prefix")
		q.Del("prefix")
		u.RawQuery = q.Encode()
	}
	ro, err := redis.ParseURL(u.String())
	if err != nil {
		return nil, "", fmt.Errorf("proxy: redis URL: %w", err)
	}
	return ro, prefix, nil
}

// OpenRedisBindings connects to the Redis server at rawURL
// (redis://[user:password@]host:port/db[?prefix=P]), loads the revocations
// and starts following new ones. Close it when done.
func OpenRedisBindings(ctx context.Context, rawURL string, opt RedisOptions) (*RedisBindings, error) {
	ro, prefix, err := parseRedisURL(rawURL)
	if err != nil {
		return nil, err
	}
	if opt.Poll <= 0 {
		opt.Poll = 250 * time.Millisecond
	}
	if opt.Timeout <= 0 {
		opt.Timeout = 500 * time.Millisecond
	}
	opt.Limits = opt.Limits.withDefaults()
	if opt.Logger == nil {
		opt.Logger = slog.Default()
	}
	b := &RedisBindings{
		rdb: redis.NewClient(ro), prefix: prefix, opt: opt, log: opt.Logger,
		tab: newTable(opt.Limits), revoked: map[string]bool{},
		kick: make(chan struct{}, 1), stop: make(chan struct{}), touch: make(chan touch, 4096),
	}
	// Subscribe before the first read of the log, so that nothing revoked
	// in between is missed.
	b.sub = b.rdb.Subscribe(ctx, prefix+"events")
	if _, err := b.sub.Receive(ctx); err != nil {
		b.sub.Close()
		b.rdb.Close()
		return nil, fmt.Errorf("proxy: redis subscribe: %w", err)
	}
	if err := b.poll(ctx); err != nil {
		b.sub.Close()
		b.rdb.Close()
		return nil, err
	}
	b.done.Add(3)
	go b.listen()
	go b.pollLoop()
	go b.refreshLoop()
	return b, nil
}

func (b *RedisBindings) key(fp string) string { return b.prefix + "b:" + fp }

type touch struct {
	fp  string
	ttl time.Duration
}

// presentedTTL is how long the key of a presented-only binding lives in
// Redis after its last use: random cookie values cost Redis memory for an
// hour at most, not Limits.Idle.
func (b *RedisBindings) ttl(presented bool) time.Duration {
	if presented {
		return min(b.opt.Limits.Idle, time.Hour)
	}
	return b.opt.Limits.Idle
}

// Get answers from the cache. A binding in use has its key's expiry in
// Redis pushed back, in the background, at most every 1/16 of it.
func (b *RedisBindings) Get(fp string) (Binding, State) {
	now := b.tab.now().UnixNano()
	bd, ok, prev, due := b.tab.get(fp, now, func(presented bool) int64 { return int64(b.ttl(presented) / 16) })
	if due {
		select {
		case b.touch <- touch{fp, b.ttl(bd.Presented)}:
		default: // the refresher is behind: the next use tries again
			b.tab.unrefresh(fp, prev)
		}
	}
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.revoked[fp] {
		return Binding{}, Revoked
	}
	if !ok {
		return Binding{}, Unbound
	}
	if bd.epoch < b.epoch {
		return bd, Revoked
	}
	return bd, Bound
}

// refreshLoop pushes back the expiry of the keys of bindings in use, in
// pipelines.
func (b *RedisBindings) refreshLoop() {
	defer b.done.Done()
	for {
		var ts []touch
		select {
		case <-b.stop:
			return
		case t := <-b.touch:
			ts = append(ts, t)
		}
	more:
		for len(ts) < 256 {
			select {
			case t := <-b.touch:
				ts = append(ts, t)
			default:
				break more
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), b.opt.Timeout)
		_, err := b.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for _, t := range ts {
				p.PExpire(ctx, b.key(t.fp), t.ttl)
			}
			return nil
		})
		cancel()
		if err != nil {
			b.log.Debug("proxy: cannot refresh binding expiry in redis", "err", err)
		}
	}
}

// bindScript binds KEYS[1] unless it is bound or ARGV[1] is in the revoked
// set KEYS[2]; it returns the binding in force, or "" if revoked. The key
// expires ARGV[3] milliseconds after this call (a binding found has its
// expiry pushed back to that, never brought forward).
var bindScript = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if v then
	if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[3]) then
		redis.call('PEXPIRE', KEYS[1], ARGV[3])
	end
	return v
end
if redis.call('SISMEMBER', KEYS[2], ARGV[1]) == 1 then return '' end
local e = redis.call('GET', KEYS[3]) or '0'
v = e .. '|' .. ARGV[2]
redis.call('SET', KEYS[1], v, 'PX', ARGV[3])
return v
`)

// Bind binds fp in Redis unless it is bound there already (first binding
// wins across every node) and caches the answer. A cached presented-only
// binding bound again without Presented moves to the cache's issued class.
func (b *RedisBindings) Bind(ctx context.Context, fp string, bd Binding) (Binding, State, error) {
	if cur, st := b.Get(fp); st != Unbound {
		if st == Bound && cur.Presented && !bd.Presented {
			if _, _, promoted := b.tab.put(fp, bd, b.tab.now().UnixNano()); promoted {
				select {
				case b.touch <- touch{fp, b.ttl(false)}:
				default:
				}
			}
		}
		return cur, st, nil
	}
	ctx, cancel := context.WithTimeout(ctx, b.opt.Timeout)
	defer cancel()
	val := strconv.FormatInt(bd.Created.UnixNano(), 10) + "|" + bd.Device + "|" + bd.Principal
	ttl := strconv.FormatInt(b.ttl(bd.Presented).Milliseconds(), 10)
	v, err := bindScript.Run(ctx, b.rdb, []string{b.key(fp), b.prefix + "revoked", b.prefix + "epoch"}, fp, val, ttl).Text()
	if err != nil {
		return Binding{}, Unbound, fmt.Errorf("proxy: redis bind: %w", err)
	}
	if v == "" {
		b.mu.Lock()
		b.revoked[fp] = true
		b.mu.Unlock()
		return Binding{}, Revoked, nil
	}
	cur, err := decodeBinding(v)
	if err != nil {
		return Binding{}, Unbound, err
	}
	cur.Presented = bd.Presented
	cur, _, _ = b.tab.put(fp, cur, b.tab.now().UnixNano())
	b.mu.Lock()
	// A binding made under a newer epoch proves a revoke-all this node has
	// not read yet.
	b.epoch = max(b.epoch, cur.epoch)
	b.mu.Unlock()
	if _, st := b.Get(fp); st == Revoked {
		return cur, Revoked, nil
	}
	return cur, Bound, nil
}

// Sizes returns how many bindings of each class the cache holds (issued,
// presented-only).
func (b *RedisBindings) Sizes() (issued, presented int) { return b.tab.counts() }

func decodeBinding(v string) (Binding, error) {
	parts := strings.SplitN(v, "|", 4)
	if len(parts) != 4 {
		return Binding{}, errors.New("proxy: redis binding: malformed value")
	}
	epoch, err1 := strconv.ParseInt(parts[0], 10, 64)
	created, err2 := strconv.ParseInt(parts[1], 10, 64)
	if err1 != nil || err2 != nil {
		return Binding{}, errors.New("proxy: redis binding: malformed value")
	}
	return Binding{Device: parts[2], Principal: parts[3], Created: time.Unix(0, created), epoch: epoch}, nil
}

// Revoke revokes fps on every node, and on this one at once.
func (b *RedisBindings) Revoke(ctx context.Context, fps []string) error {
	if err := revokeRedis(ctx, b.rdb, b.prefix, fps, false, true); err != nil {
		return err
	}
	return b.poll(ctx)
}

// RevokeAll revokes every session bound so far, on every node.
func (b *RedisBindings) RevokeAll(ctx context.Context) error {
	if err := revokeRedis(ctx, b.rdb, b.prefix, nil, true, true); err != nil {
		return err
	}
	return b.poll(ctx)
}

// revokeRedis writes revocations in one transaction and, with publish,
// tells the nodes to read them now.
func revokeRedis(ctx context.Context, rdb *redis.Client, prefix string, fps []string, all, publish bool) error {
	if !all && len(fps) == 0 {
		return nil
	}
	_, err := rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.SetNX(ctx, prefix+"logid", rand.Text(), 0)
		if all {
			p.Incr(ctx, prefix+"epoch")
			p.RPush(ctx, prefix+"log", "*")
		} else {
			args := make([]any, len(fps))
			for i, fp := range fps {
				args[i] = fp
			}
			p.SAdd(ctx, prefix+"revoked", args...)
			p.RPush(ctx, prefix+"log", args...)
		}
		if publish {
			p.Publish(ctx, prefix+"events", "revoke")
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("proxy: redis revoke: %w", err)
	}
	return nil
}

// RevokeRedis records revocations in the Redis store at rawURL for every
// proxy node following it; it is what `cordon revoke -store redis://…`
// does. With all set, it revokes everything bound so far and ignores fps.
func RevokeRedis(ctx context.Context, rawURL string, fps []string, all bool) error {
	ro, prefix, err := parseRedisURL(rawURL)
	if err != nil {
		return err
	}
	rdb := redis.NewClient(ro)
	defer rdb.Close()
	return revokeRedis(ctx, rdb, prefix, fps, all, true)
}

// listen turns pub/sub messages into immediate polls.
func (b *RedisBindings) listen() {
	defer b.done.Done()
	ch := b.sub.Channel()
	for {
		select {
		case <-b.stop:
			return
		case _, ok := <-ch:
			if !ok {
				return
			}
			select {
			case b.kick <- struct{}{}:
			default: // a poll is already due
			}
		}
	}
}

func (b *RedisBindings) pollLoop() {
	defer b.done.Done()
	t := time.NewTicker(b.opt.Poll)
	defer t.Stop()
	failing := false // log when reading starts and stops failing, not every Poll
	for {
		select {
		case <-b.stop:
			return
		case <-t.C:
		case <-b.kick:
		}
		ctx, cancel := context.WithTimeout(context.Background(), b.opt.Poll*4)
		err := b.poll(ctx)
		cancel()
		switch {
		case err != nil && !failing:
			b.log.Warn("proxy: cannot read edge revocations from redis; retrying every poll", "err", err)
		case err == nil && failing:
			b.log.Info("proxy: reading edge revocations from redis again")
		}
		failing = err != nil
	}
}

// poll reads the revocation log from where this node stopped, and the
// revoke-all epoch.
func (b *RedisBindings) poll(ctx context.Context) error {
	b.pollMu.Lock()
	defer b.pollMu.Unlock()
	return b.pollLocked(ctx)
}

func (b *RedisBindings) pollLocked(ctx context.Context) error {
	var epoch *redis.StringCmd
	var entries *redis.StringSliceCmd
	var length *redis.IntCmd
	var logID *redis.StringCmd
	_, err := b.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		epoch = p.Get(ctx, b.prefix+"epoch")
		logID = p.Get(ctx, b.prefix+"logid")
		length = p.LLen(ctx, b.prefix+"log")
		entries = p.LRange(ctx, b.prefix+"log", b.lastSeq, -1)
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return fmt.Errorf("proxy: redis poll: %w", err)
	}
	e, err := epoch.Int64()
	if err != nil && !errors.Is(err, redis.Nil) {
		return fmt.Errorf("proxy: redis poll: %w", err)
	}
	id := logID.Val() // "" when absent
	b.mu.RLock()
	lost := length.Val() < b.lastSeq || e < b.epoch || b.logID != "" && id != b.logID
	b.mu.RUnlock()
	if lost {
		return b.restore(ctx)
	}
	b.logID = id
	fps := entries.Val()
	b.mu.Lock()
	b.epoch = max(b.epoch, e)
	for _, fp := range fps {
		if fp != "*" {
			b.revoked[fp] = true
		}
	}
	b.mu.Unlock()
	b.lastSeq += int64(len(fps))
	return nil
}

// restoreScript names the log's generation KEYS[4] ARGV[1] unless it has
// a name, raises the epoch KEYS[1] to at least ARGV[2] and records the
// fingerprints ARGV[3:] as revoked in the set KEYS[2] and the log KEYS[3].
// It returns the generation's name.
var restoreScript = redis.NewScript(`
redis.call('SETNX', KEYS[4], ARGV[1])
local e = tonumber(redis.call('GET', KEYS[1]) or '0')
if e < tonumber(ARGV[2]) then redis.call('SET', KEYS[1], ARGV[2]) end
for i = 3, #ARGV do
	redis.call('SADD', KEYS[2], ARGV[i])
	redis.call('RPUSH', KEYS[3], ARGV[i])
end
return redis.call('GET', KEYS[4])
`)

// restore writes back what this node knows when Redis has lost the
// revocations (a restart without persistence, a flush): the log is shorter
// than what the node has read, or the epoch went back. Without it, the
// next revocations would land below the node's read position and never be
// applied, and sessions revoked before would be bound again elsewhere.
// Caller holds pollMu.
func (b *RedisBindings) restore(ctx context.Context) error {
	b.log.Error("proxy: the Redis store lost edge revocations; writing back those this node knows")
	b.mu.RLock()
	args := make([]any, 0, len(b.revoked)+2)
	args = append(args, rand.Text(), b.epoch)
	for fp := range b.revoked {
		args = append(args, fp)
	}
	b.mu.RUnlock()
	id, err := restoreScript.Run(ctx, b.rdb, []string{b.prefix + "epoch", b.prefix + "revoked", b.prefix + "log", b.prefix + "logid"}, args...).Text()
	if err != nil {
		return fmt.Errorf("proxy: redis restore: %w", err)
	}
	// Read the whole new log, the restored entries included, at once.
	b.logID, b.lastSeq = id, 0
	return b.pollLocked(ctx)
}

// Close stops following revocations and closes the connection.
func (b *RedisBindings) Close() error {
	b.stopOnce.Do(func() { close(b.stop) })
	b.sub.Close()
	b.done.Wait()
	return b.rdb.Close()
}
