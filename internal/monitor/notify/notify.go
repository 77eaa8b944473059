package notify

import (
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/regionfs/regionfs/internal/engine/kv"
	"github.com/regionfs/regionfs/internal/engine/space"
)

// Keys (prefix 'n'):
//
//	'n' 't' name        → topic (JSON)
//	'n' 's' id          → subscription (JSON)
//	'n' 'd' id          → pending delivery (JSON)
//	'n' 'k'             → signing key and certificate (JSON)
const (
	pfxNotify       = 'n'
	tagTopic        = 't'
	tagSubscription = 's'
	tagDelivery     = 'd'
	tagKey          = 'k'
)

// SMTP is the relay email subscriptions go through.
type SMTP struct {
	// Addr is host:port.
	Addr string
	// From is the sender address.
	From string
	// Username and Password authenticate (PLAIN) when set.
	Username, Password string
	// TLS, when set, is used for STARTTLS (the relay must offer it).
	TLS *tls.Config
}

// Options configure a Service.
type Options struct {
	KV        kv.Store
	Region    string
	AccountID string
	// PublicURL is where subscribers reach this region's SNS without
	// signing: SubscribeURL, UnsubscribeURL and SigningCertURL start with
	// it (http://127.1.0.1:7070).
	PublicURL string
	// SMTP, when set, delivers email and email-json subscriptions.
	SMTP *SMTP
	// Client sends http and https deliveries (default: 15 s timeout, no
	// redirects followed).
	Client *http.Client
	Clock  func() time.Time
	Logger *slog.Logger
	// Workers deliver in parallel (default 4).
	Workers int
	// TokenTTL is how long a confirmation token is valid (default 3 days,
	// as on AWS); unconfirmed subscriptions are removed after it.
	TokenTTL time.Duration
	// Space admits published messages by the data disk's free space (nil:
	// always): below its floor Publish is refused, since every message
	// is stored (up to 256 KiB a subscription) in a Pebble DB whose WAL
	// stops the process when it meets ENOSPC. Alarm notifications
	// (Notify) ask CheckInternal, which admits them down to half the
	// floor: an alarm that watches a full disk still notifies.
	Space interface {
		Check(need int64) error
		CheckInternal(need int64) error
	}
}

// Limits.
const (
	MaxTopics               = 1000
	MaxSubscriptionsInTopic = 10000
	MaxMessageBytes         = 256 * 1024
	pageSize                = 100
)

// Service is a region's SNS.
type Service struct {
	o      Options
	log    *slog.Logger
	signer *signer

	mu     sync.Mutex               // guards the fields below
	topics map[string]*topic        // by name
	subs   map[string]*subscription // by id
	closed bool

	q *queue
}

type topic struct {
	Name       string            `json:"name"`
	ARN        string            `json:"arn"`
	Attributes map[string]string `json:"attrs,omitempty"`
	Tags       []Tag             `json:"tags,omitempty"`
	Created    time.Time         `json:"created"`
}

// Tag is a topic tag.
type Tag struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

type subscription struct {
	ID                string            `json:"id"`
	ARN               string            `json:"arn"`
	TopicARN          string            `json:"topic"`
	Protocol          string            `json:"protocol"`
	Endpoint          string            `json:"endpoint"`
	Confirmed         bool              `json:"confirmed"`
	Token             string            `json:"token,omitempty"`
	TokenExpires      time.Time         `json:"tokenExpires"`
	AuthOnUnsubscribe bool              `json:"authOnUnsubscribe,omitempty"`
	Attributes        map[string]string `json:"attrs,omitempty"`
	Created           time.Time         `json:"created"`
}

func topicKey(name string) []byte { return append([]byte{pfxNotify, tagTopic}, name...) }
func subKey(id string) []byte     { return append([]byte{pfxNotify, tagSubscription}, id...) }

// Open loads the region's topics, subscriptions and pending deliveries
// and starts delivering.
func Open(o Options) (*Service, error) {
	if o.KV == nil || o.Region == "" || o.AccountID == "" {
		return nil, errors.New("notify: KV, Region and AccountID are required")
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Client == nil {
		o.Client = &http.Client{Timeout: 15 * time.Second,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	if o.Workers <= 0 {
		o.Workers = 4
	}
	if o.TokenTTL <= 0 {
		o.TokenTTL = 72 * time.Hour
	}
	o.PublicURL = strings.TrimSuffix(o.PublicURL, "/")
	s := &Service{o: o, log: o.Logger.With("region", o.Region), topics: map[string]*topic{}, subs: map[string]*subscription{}}
	var err error
	if s.signer, err = loadSigner(o.KV, o.Region, o.Clock()); err != nil {
		return nil, err
	}
	if err := load(o.KV, tagTopic, func(v []byte) error {
		var t topic
		if err := json.Unmarshal(v, &t); err != nil {
			return err
		}
		s.topics[t.Name] = &t
		return nil
	}); err != nil {
		return nil, fmt.Errorf("notify: topics: %w", err)
	}
	if err := load(o.KV, tagSubscription, func(v []byte) error {
		var sub subscription
		if err := json.Unmarshal(v, &sub); err != nil {
			return err
		}
		s.subs[sub.ID] = &sub
		return nil
	}); err != nil {
		return nil, fmt.Errorf("notify: subscriptions: %w", err)
	}
	if s.q, err = openQueue(s); err != nil {
		return nil, err
	}
	s.q.start()
	return s, nil
}

func load(store kv.Store, tag byte, f func([]byte) error) error {
	return kv.Scan(store, []byte{pfxNotify, tag}, []byte{pfxNotify, tag + 1}, func(k, v []byte) error {
		if err := f(v); err != nil {
			return fmt.Errorf("%q: %w", k, err)
		}
		return nil
	})
}

// Close stops delivering (pending deliveries stay in the store).
func (s *Service) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	s.q.close()
	return nil
}

// Pause holds (true) or resumes (false) deliveries, as a region down on
// demand does.
func (s *Service) Pause(paused bool) { s.q.pause(paused) }

// SigningCert returns the file name and PEM of the signing certificate
// (served at PublicURL/name).
func (s *Service) SigningCert() (name string, pem []byte) { return s.signer.certName, s.signer.certPEM }

func (s *Service) certURL() string { return s.o.PublicURL + "/" + s.signer.certName }

// TopicARN is the ARN of the topic named name in this region.
func (s *Service) TopicARN(name string) string {
	return "arn:aws:sns:" + s.o.Region + ":" + s.o.AccountID + ":" + name
}

// topicByARNLocked finds a topic of this region by ARN.
func (s *Service) topicByARNLocked(param, arn string) (*topic, error) {
	if arn == "" {
		return nil, invalid("%s is required", param)
	}
	prefix := "arn:aws:sns:" + s.o.Region + ":" + s.o.AccountID + ":"
	name, ok := strings.CutPrefix(arn, prefix)
	if !ok || name == "" || strings.Contains(name, ":") {
		if strings.HasPrefix(arn, "arn:aws:sns:") {
			return nil, notFound("Topic does not exist")
		}
		return nil, invalid("%s Reason: An ARN must have the form arn:aws:sns:%s:%s:NAME", param, s.o.Region, s.o.AccountID)
	}
	t := s.topics[name]
	if t == nil {
		return nil, notFound("Topic does not exist")
	}
	return t, nil
}

// put saves one record durably (refused below the data disk's floor).
func (s *Service) put(key []byte, v any) error {
	j := mustJSON(v)
	if err := s.room(int64(len(j))+recordBytes, false); err != nil {
		return err
	}
	b := s.o.KV.NewBatch()
	defer b.Close()
	b.Set(key, j)
	return s.commit(b)
}

// recordBytes is what a topic or subscription record adds to the store
// beyond its value (keys, the write-ahead log), for the space check.
const recordBytes = 4 << 10

// room admits need more bytes in the store by the data disk's free space
// (Options.Space): below its floor ErrNoSpace. internal: the server's own
// notifications, admitted down to the guard's lower floor.
func (s *Service) room(need int64, internal bool) error {
	if internal {
		return space.RoomInternal(s.o.Space, need, ErrNoSpace)
	}
	return space.Room(s.o.Space, need, ErrNoSpace)
}

// withAttribute returns a copy of attrs with name set to value, or without
// name when clear is set.
func withAttribute(attrs map[string]string, name, value string, clear bool) map[string]string {
	out := maps.Clone(attrs)
	if out == nil {
		out = map[string]string{}
	}
	if clear {
		delete(out, name)
	} else {
		out[name] = value
	}
	return out
}

func (s *Service) commit(b kv.Batch) error {
	if err := b.Commit(true); err != nil {
		return fmt.Errorf("notify: save: %w", err)
	}
	return nil
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("notify: encode %T: %v", v, err)) // plain data: a broken invariant
	}
	return b
}
