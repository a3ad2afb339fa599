package forensics

import (
	"bufio"
	"bytes"
	"cmp"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"slices"
	"sync"
	"sync/atomic"
)

// Source is one input of a scan: a name for reports (a file name, or "-"
// for stdin) and its bytes, plain or gzip-compressed (detected by the gzip
// magic bytes, whatever the name says).
type Source struct {
	Name string
	R    io.Reader
}

// batch is the parsed content of one chunk of a source.
type batch struct {
	recs  []Record
	order []*Record // recs by (TS, LineNo)
	bad   []badLine
	lines int64  // lines in the chunk, to number the next chunk's lines
	bytes int64  // bytes of the chunk (decompressed)
	err   error  // a read error that ended the source (last batch only)
	data  []byte // the chunk, kept alive while its records are in use
}

type badLine struct {
	line   int64 // 1-based within the chunk
	reason string
}

// stream delivers one source's batches in order.
type stream struct {
	name    string
	futures chan chan *batch
	maxTS   int64
	started bool
	done    bool
	lineOff int64
	err     error
}

type job struct {
	data []byte
	out  chan *batch
	err  error
}

// countingReader counts bytes read from the underlying (possibly
// compressed) input, for progress reports.
type countingReader struct {
	r io.Reader
	n *atomic.Int64
}

func (c countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// pipeline reads sources in parallel: one reader goroutine per source cuts
// its bytes into chunks at line ends, a pool of workers parses chunks, and
// each source's batches come out in order.
type pipeline struct {
	// Buffers of scanned batches come back here for reuse: no record,
	// state or finding points into a batch once it has been scanned.
	freeData  chan []byte
	freeRecs  chan []Record
	freeOrder chan []*Record
	streams   []*stream
	jobs      chan job
	wg        sync.WaitGroup
	bytesRead atomic.Int64
	cancel    context.CancelFunc
}

const maxChunkGrowth = 64 << 20

func startPipeline(ctx context.Context, srcs []Source, workers, chunkSize int, seed maphash.Seed) *pipeline {
	ctx, cancel := context.WithCancel(ctx)
	p := &pipeline{jobs: make(chan job, workers*2), cancel: cancel,
		freeData: make(chan []byte, 16), freeRecs: make(chan []Record, 16), freeOrder: make(chan []*Record, 16)}
	for w := 0; w < workers; w++ {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			for j := range p.jobs {
				var recs []Record
				var order []*Record
				select {
				case recs = <-p.freeRecs:
				default:
				}
				select {
				case order = <-p.freeOrder:
				default:
				}
				j.out <- parseChunk(j.data, j.err, seed, recs, order)
			}
		}()
	}
	var readers sync.WaitGroup
	// Chunks read ahead per source: enough to keep the workers busy, fewer
	// per source when there are many (memory grows with sources × ahead).
	ahead := workers*2 + 1
	if len(srcs) > 4 {
		ahead = 2
	}
	for _, src := range srcs {
		s := &stream{name: src.Name, futures: make(chan chan *batch, ahead)}
		p.streams = append(p.streams, s)
		readers.Add(1)
		go func(src Source, s *stream) {
			defer readers.Done()
			defer close(s.futures)
			p.readSource(ctx, src, s, chunkSize)
		}(src, s)
	}
	go func() {
		readers.Wait()
		close(p.jobs)
	}()
	return p
}

// recycle takes back the buffers of a batch that has been scanned.
func (p *pipeline) recycle(b *batch) {
	select {
	case p.freeData <- b.data[:0]:
	default:
	}
	select {
	case p.freeRecs <- b.recs[:0]:
	default:
	}
	select {
	case p.freeOrder <- b.order[:0]:
	default:
	}
}

func (p *pipeline) stop() {
	p.cancel()
	for _, s := range p.streams {
		for f := range s.futures {
			<-f
		}
	}
	p.wg.Wait()
}

func (p *pipeline) send(ctx context.Context, s *stream, data []byte, err error) bool {
	out := make(chan *batch, 1)
	select {
	case s.futures <- out:
	case <-ctx.Done():
		return false
	}
	p.jobs <- job{data: data, out: out, err: err}
	return true
}

func (p *pipeline) readSource(ctx context.Context, src Source, s *stream, chunkSize int) {
	br := bufio.NewReaderSize(countingReader{src.R, &p.bytesRead}, 64<<10)
	var r io.Reader = br
	if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			p.send(ctx, s, nil, fmt.Errorf("gzip header: %w", err))
			return
		}
		r = zr
	}
	var carry []byte
	size := chunkSize
	for {
		if ctx.Err() != nil {
			return
		}
		var buf []byte
		select {
		case b := <-p.freeData:
			if cap(b) >= size {
				buf = b[:size]
			}
		default:
		}
		if buf == nil {
			buf = make([]byte, size)
		}
		n := copy(buf, carry)
		var err error
		for n < len(buf) && err == nil {
			var m int
			m, err = r.Read(buf[n:])
			n += m
		}
		buf = buf[:n]
		if err != nil {
			if errors.Is(err, io.ErrUnexpectedEOF) {
				err = errors.New("truncated gzip stream (unexpected end of data)")
			}
			p.send(ctx, s, buf, err)
			return
		}
		cut := bytes.LastIndexByte(buf, '\n')
		if cut < 0 && len(buf) < maxChunkGrowth {
			// One line longer than the buffer: read on with a bigger one.
			carry = buf
			size = len(buf) * 2
			continue
		}
		if cut < 0 {
			cut = len(buf) - 1
		}
		carry = append([]byte(nil), buf[cut+1:]...)
		size = chunkSize
		if len(carry) >= size {
			size = len(carry) * 2
		}
		if !p.send(ctx, s, buf[:cut+1], nil) {
			return
		}
	}
}

// parseChunk parses the lines of one chunk.
func parseChunk(data []byte, err error, seed maphash.Seed, recs []Record, order []*Record) *batch {
	b := &batch{bytes: int64(len(data)), data: data}
	if err != nil && err != io.EOF {
		b.err = err
	}
	// A reused slice has room for a chunk's lines; a new one is sized from
	// a typical line length and grows if the lines are shorter.
	if cap(recs) >= len(data)/400 {
		b.recs = recs[:0]
	} else {
		b.recs = make([]Record, 0, len(data)/400+16)
	}
	var line int64
	for len(data) > 0 {
		line++
		var l []byte
		if k := bytes.IndexByte(data, '\n'); k >= 0 {
			l, data = data[:k], data[k+1:]
		} else {
			l, data = data, nil
			if b.err != nil {
				b.bad = append(b.bad, badLine{line, "line cut short by the read error"})
				continue
			}
		}
		if len(l) > 0 && l[len(l)-1] == '\r' {
			l = l[:len(l)-1]
		}
		if len(bytes.TrimSpace(l)) == 0 {
			continue
		}
		b.recs = append(b.recs, Record{})
		r := &b.recs[len(b.recs)-1]
		if perr := parseLine(l, r); perr != nil {
			b.recs = b.recs[:len(b.recs)-1]
			b.bad = append(b.bad, badLine{line, perr.Error()})
			continue
		}
		r.LineNo = line
		r.cl = client{ua: maphash.String(seed, r.UA)}
		if r.Dev != "" {
			r.cl.dev, _ = makeKey(r.Dev)
			r.cl.hasDev = true
			r.hDev = keyHash(seed, r.cl.dev)
		}
		if r.SidIn != "" {
			r.kIn, _ = makeKey(r.SidIn)
			r.hIn = keyHash(seed, r.kIn)
		}
		if r.SidOut != "" {
			r.kOut, _ = makeKey(r.SidOut)
			r.hOut = keyHash(seed, r.kOut)
		}
		r.nk, r.v6, r.netOK = network(r.IP)
		r.ph = maphash.String(seed, r.Host) ^ uint64(r.PID)*0x9e3779b97f4a7c15
	}
	b.lines = line
	if cap(order) >= len(b.recs) {
		b.order = order[:len(b.recs)]
	} else {
		b.order = make([]*Record, len(b.recs))
	}
	for i := range b.recs {
		b.order[i] = &b.recs[i]
	}
	slices.SortFunc(b.order, func(x, y *Record) int {
		if x.TS != y.TS {
			return cmp.Compare(x.TS, y.TS)
		}
		return cmp.Compare(x.LineNo, y.LineNo)
	})
	return b
}
