package notify

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/smtp"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/regionfs/regionfs/internal/engine/kv"
)

// delivery is one message on its way to one subscription.
type delivery struct {
	ID       string    `json:"id"`
	SubID    string    `json:"sub"`
	Envelope envelope  `json:"msg"`
	Attempt  int       `json:"attempt"` // deliveries tried so far
	Next     time.Time `json:"next"`
}

func deliveryKey(id string) []byte { return append([]byte{pfxNotify, tagDelivery}, id...) }

func putDelivery(b kv.Batch, d *delivery) { b.Set(deliveryKey(d.ID), mustJSON(d)) }

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// emailRetry is how email deliveries are retried (SNS does not document
// its own; three retries backing off to five minutes).
var emailRetry = retryPolicy{MinDelayTarget: 10, MaxDelayTarget: 300, NumRetries: 3, BackoffFunction: "exponential"}

// queue holds the pending deliveries and runs them.
type queue struct {
	s *Service

	mu       sync.Mutex // guards the fields below
	pending  map[string]*delivery
	inflight map[string]bool

	paused atomic.Bool
	wakeCh chan struct{}
	work   chan *delivery
	stop   chan struct{}
	wg     sync.WaitGroup
}

func openQueue(s *Service) (*queue, error) {
	q := &queue{s: s, pending: map[string]*delivery{}, inflight: map[string]bool{}, wakeCh: make(chan struct{}, 1),
		work: make(chan *delivery), stop: make(chan struct{})}
	err := load(s.o.KV, tagDelivery, func(v []byte) error {
		var d delivery
		if err := json.Unmarshal(v, &d); err != nil {
			return err
		}
		q.pending[d.ID] = &d
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("notify: deliveries: %w", err)
	}
	return q, nil
}

func (q *queue) start() {
	q.wg.Add(1 + q.s.o.Workers)
	go q.dispatch()
	for i := 0; i < q.s.o.Workers; i++ {
		go q.worker()
	}
}

func (q *queue) close() {
	close(q.stop)
	q.wg.Wait()
}

func (q *queue) pause(p bool) {
	q.paused.Store(p)
	q.wake()
}

func (q *queue) wake() {
	select {
	case q.wakeCh <- struct{}{}:
	default:
	}
}

// add queues committed deliveries.
func (q *queue) add(ds ...*delivery) {
	if len(ds) == 0 {
		return
	}
	q.mu.Lock()
	for _, d := range ds {
		q.pending[d.ID] = d
	}
	q.mu.Unlock()
	q.wake()
}

// dispatch hands due deliveries to the workers, oldest first.
func (q *queue) dispatch() {
	defer q.wg.Done()
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	expire := time.NewTicker(time.Minute)
	defer expire.Stop()
	for {
		select {
		case <-q.stop:
			return
		case <-q.wakeCh:
		case <-t.C:
		case <-expire.C:
			q.s.expirePending()
			continue
		}
		if q.paused.Load() {
			continue
		}
		now := q.s.o.Clock()
		q.mu.Lock()
		var due []*delivery
		for id, d := range q.pending {
			if !q.inflight[id] && !d.Next.After(now) {
				due = append(due, d)
			}
		}
		sort.Slice(due, func(i, j int) bool { return due[i].Next.Before(due[j].Next) })
		q.mu.Unlock()
		for _, d := range due {
			q.mu.Lock()
			q.inflight[d.ID] = true
			q.mu.Unlock()
			select {
			case q.work <- d:
			case <-q.stop:
				return
			}
		}
	}
}

func (q *queue) worker() {
	defer q.wg.Done()
	for {
		select {
		case <-q.stop:
			return
		case d := <-q.work:
			q.run(d)
		}
	}
}

// outcome of one attempt.
type outcome int

const (
	delivered outcome = iota
	retry
	drop
)

// run tries a delivery once and then deletes it, or schedules its retry.
func (q *queue) run(d *delivery) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-q.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	s := q.s
	s.mu.Lock()
	sub := s.subs[d.SubID]
	var c subscription
	var topicPolicy, sigVersion string
	if sub != nil {
		c = *sub
		if t := s.topics[sub.TopicARN[strings.LastIndexByte(sub.TopicARN, ':')+1:]]; t != nil {
			topicPolicy, sigVersion = t.Attributes["DeliveryPolicy"], t.Attributes["SignatureVersion"]
		}
	}
	s.mu.Unlock()
	var res outcome
	var err error
	var policy retryPolicy
	switch {
	case sub == nil:
		res, err = drop, errors.New("the subscription no longer exists")
	case d.Envelope.Type == typeNotification && !c.Confirmed:
		res, err = drop, errors.New("the subscription is not confirmed")
	default:
		env := d.Envelope
		if err = s.signer.sign(&env, sigVersion, s.certURL()); err != nil {
			res = drop
			break
		}
		switch c.Protocol {
		case ProtocolHTTP, ProtocolHTTPS:
			policy = retryFor(topicPolicy, c.Attributes["DeliveryPolicy"])
			res, err = s.postHTTP(ctx, &c, &env)
		case ProtocolEmail, ProtocolEmailJSON:
			policy = emailRetry
			res, err = s.sendEmail(&c, &env)
		default:
			res, err = drop, fmt.Errorf("protocol %s", c.Protocol)
		}
	}
	if ctx.Err() != nil && res != delivered {
		// Shutting down: the delivery stays as it was, for the next start.
		q.mu.Lock()
		delete(q.inflight, d.ID)
		q.mu.Unlock()
		return
	}
	next := *d
	next.Attempt++
	if res == retry {
		if wait, ok := policy.delay(next.Attempt); ok {
			next.Next = s.o.Clock().Add(wait)
		} else {
			res = drop
			err = fmt.Errorf("gave up after %d attempts: %w", next.Attempt, err)
		}
	}
	b := s.o.KV.NewBatch()
	defer b.Close()
	if res != retry {
		b.Delete(deliveryKey(d.ID)) // frees room: never refused
	} else if rerr := s.room(int64(len(next.Envelope.Message))+recordBytes, true); rerr != nil {
		// A retry rewrites the delivery's record (the message again, up
		// to 256 KiB): the server's own bookkeeping, not written below
		// the data disk's lower floor (CheckInternal), since the store's
		// Pebble WAL stops the process at ENOSPC. The retry is kept in
		// memory; the stored record keeps its earlier attempt, so after
		// a restart it is tried again at once (at least once, as before).
		s.log.Warn("sns retry state not saved", "delivery", d.ID, "attempt", next.Attempt, "err", rerr)
	} else {
		putDelivery(b, &next)
	}
	if !b.Empty() {
		if cerr := b.Commit(res != retry); cerr != nil {
			s.log.Error("sns delivery state not saved", "delivery", d.ID, "err", cerr)
		}
	}
	q.mu.Lock()
	delete(q.inflight, d.ID)
	if res == retry {
		q.pending[d.ID] = &next
	} else {
		delete(q.pending, d.ID)
	}
	q.mu.Unlock()
	switch res {
	case delivered:
		s.log.Debug("sns delivered", "type", d.Envelope.Type, "subscription", c.ARN, "protocol", c.Protocol, "attempt", next.Attempt)
	case retry:
		s.log.Info("sns delivery failed, will retry", "subscription", c.ARN, "endpoint", c.Endpoint, "attempt", next.Attempt, "next", next.Next, "err", err)
	default:
		s.log.Warn("sns delivery dropped", "subscription", c.ARN, "endpoint", c.Endpoint, "type", d.Envelope.Type, "err", err)
	}
}

// postHTTP POSTs a message to an http/https endpoint: 2xx is delivered, a
// 4xx other than 429 will not change (dropped), anything else is retried.
func (s *Service) postHTTP(ctx context.Context, sub *subscription, env *envelope) (outcome, error) {
	var body []byte
	if env.Type == typeNotification && sub.Attributes["RawMessageDelivery"] == "true" {
		body = []byte(env.Message)
	} else {
		var err error
		if body, err = json.Marshal(env); err != nil {
			return drop, err
		}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, sub.Endpoint, bytes.NewReader(body))
	if err != nil {
		return drop, err
	}
	h := req.Header
	h.Set("Content-Type", "text/plain; charset=UTF-8")
	h.Set("User-Agent", "Amazon Simple Notification Service Agent")
	h.Set("X-Amz-Sns-Message-Type", env.Type)
	h.Set("X-Amz-Sns-Message-Id", env.MessageID)
	h.Set("X-Amz-Sns-Topic-Arn", env.TopicArn)
	if env.Type == typeNotification {
		h.Set("X-Amz-Sns-Subscription-Arn", sub.ARN)
		if sub.Attributes["RawMessageDelivery"] == "true" {
			h.Set("X-Amz-Sns-Rawdelivery", "true")
		}
	}
	resp, err := s.o.Client.Do(req)
	if err != nil {
		return retry, err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return delivered, nil
	case resp.StatusCode >= 400 && resp.StatusCode < 500 && resp.StatusCode != http.StatusTooManyRequests:
		return drop, fmt.Errorf("the endpoint answered %s", resp.Status)
	}
	return retry, fmt.Errorf("the endpoint answered %s", resp.Status)
}

// sendEmail sends a message through the SMTP relay.
func (s *Service) sendEmail(sub *subscription, env *envelope) (outcome, error) {
	relay := s.o.SMTP
	if relay == nil {
		return drop, errors.New("no SMTP relay configured")
	}
	s.mu.Lock()
	display := ""
	if t := s.topics[env.TopicArn[strings.LastIndexByte(env.TopicArn, ':')+1:]]; t != nil {
		display = t.Attributes["DisplayName"]
	}
	s.mu.Unlock()
	subject, text := env.Subject, env.Message
	switch {
	case env.Type == typeConfirmation:
		subject = "AWS Notification - Subscription Confirmation"
		text = "You have chosen to subscribe to the topic: \n" + env.TopicArn + "\n\nTo confirm this subscription, click or visit the link below (If this was in error no action is necessary): \n" +
			env.SubscribeURL + "\n"
	case sub.Protocol == ProtocolEmailJSON:
		b, _ := json.Marshal(env)
		text = string(b)
	default:
		text += "\n\n--\nIf you wish to stop receiving notifications from this topic, please click or visit the link below to unsubscribe:\n" +
			env.UnsubscribeURL + "\n"
	}
	if subject == "" {
		subject = display
	}
	if subject == "" {
		subject = "AWS Notification Message"
	}
	from := relay.From
	if display != "" {
		from = mime.QEncoding.Encode("utf-8", display) + " <" + relay.From + ">"
	}
	var msg bytes.Buffer
	fmt.Fprintf(&msg, "From: %s\r\nTo: %s\r\nSubject: %s\r\nDate: %s\r\nMessage-ID: <%s@%s>\r\nMIME-Version: 1.0\r\n",
		from, sub.Endpoint, mime.QEncoding.Encode("utf-8", subject), s.o.Clock().UTC().Format(time.RFC1123Z), env.MessageID, "sns."+s.o.Region+".regionfs")
	fmt.Fprintf(&msg, "Content-Type: text/plain; charset=UTF-8\r\nContent-Transfer-Encoding: base64\r\n")
	fmt.Fprintf(&msg, "X-Amz-Sns-Message-Id: %s\r\nX-Amz-Sns-Topic-Arn: %s\r\n\r\n", env.MessageID, env.TopicArn)
	enc := base64.StdEncoding.EncodeToString([]byte(text))
	for len(enc) > 76 {
		msg.WriteString(enc[:76] + "\r\n")
		enc = enc[76:]
	}
	msg.WriteString(enc + "\r\n")
	if err := sendMail(relay, sub.Endpoint, msg.Bytes()); err != nil {
		return retry, err
	}
	return delivered, nil
}

// sendMail delivers one message through relay within 30 seconds.
func sendMail(relay *SMTP, to string, msg []byte) error {
	conn, err := net.DialTimeout("tcp", relay.Addr, 10*time.Second)
	if err != nil {
		return err
	}
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	host, _, _ := net.SplitHostPort(relay.Addr)
	c, err := smtp.NewClient(conn, host)
	if err != nil {
		conn.Close()
		return err
	}
	defer c.Close()
	if relay.TLS != nil {
		if ok, _ := c.Extension("STARTTLS"); !ok {
			return errors.New("the SMTP relay does not offer STARTTLS")
		}
		if err := c.StartTLS(relay.TLS); err != nil {
			return err
		}
	}
	if relay.Username != "" {
		if err := c.Auth(smtp.PlainAuth("", relay.Username, relay.Password, host)); err != nil {
			return err
		}
	}
	if err := c.Mail(relay.From); err != nil {
		return err
	}
	if err := c.Rcpt(to); err != nil {
		return err
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := w.Write(msg); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	return c.Quit()
}

// expirePending removes subscriptions whose confirmation token expired.
func (s *Service) expirePending() {
	now := s.o.Clock()
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.o.KV.NewBatch()
	defer b.Close()
	var gone []string
	for id, sub := range s.subs {
		if !sub.Confirmed && now.After(sub.TokenExpires) {
			b.Delete(subKey(id))
			gone = append(gone, id)
		}
	}
	if len(gone) == 0 {
		return
	}
	if err := b.Commit(true); err != nil {
		s.log.Warn("expire pending subscriptions", "err", err)
		return
	}
	for _, id := range gone {
		delete(s.subs, id)
	}
}
