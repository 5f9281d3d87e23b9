package client

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"

	containertypes "github.com/moby/moby/api/types/container"
)

// ContainerCreate is POST /containers/create.
func (c *Client) ContainerCreate(ctx context.Context, name string, req containertypes.CreateRequest) (containertypes.CreateResponse, error) {
	var out containertypes.CreateResponse
	b, _ := json.Marshal(req)
	q := url.Values{}
	if name != "" {
		q.Set("name", name)
	}
	resp, err := c.Do(ctx, http.MethodPost, "/containers/create", q, strings.NewReader(string(b)))
	if err != nil {
		return out, err
	}
	defer resp.Body.Close()
	return out, json.NewDecoder(resp.Body).Decode(&out)
}

// ContainerPost is a POST on /containers/{id}/{op} with no body and no
// answer but the status.
func (c *Client) ContainerPost(ctx context.Context, id, op string, q url.Values) error {
	resp, err := c.Do(ctx, http.MethodPost, "/containers/"+id+"/"+op, q, nil)
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}

// ContainerUpdate is POST /containers/{id}/update.
func (c *Client) ContainerUpdate(ctx context.Context, id string, u containertypes.UpdateConfig) ([]string, error) {
	b, _ := json.Marshal(u)
	resp, err := c.Do(ctx, http.MethodPost, "/containers/"+id+"/update", nil, bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var out containertypes.UpdateResponse
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return nil, fmt.Errorf("update %s: %w", id, err)
	}
	return out.Warnings, nil
}

// ContainerExport is GET /containers/{id}/export: a tar of its filesystem.
func (c *Client) ContainerExport(ctx context.Context, id string) (io.ReadCloser, error) {
	resp, err := c.Do(ctx, http.MethodGet, "/containers/"+id+"/export", nil, nil)
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

// ContainerChanges is GET /containers/{id}/changes (docker diff).
func (c *Client) ContainerChanges(ctx context.Context, id string) ([]containertypes.FilesystemChange, error) {
	var out []containertypes.FilesystemChange
	return out, c.getJSON(ctx, "/containers/"+id+"/changes", nil, &out)
}

// ContainerRemove is DELETE /containers/{id}.
func (c *Client) ContainerRemove(ctx context.Context, id string, force, volumes bool) error {
	resp, err := c.Do(ctx, http.MethodDelete, "/containers/"+id, url.Values{"force": {fmt.Sprint(force)}, "v": {fmt.Sprint(volumes)}}, nil)
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}

// ContainerWait is POST /containers/{id}/wait. The returned function
// blocks for the exit code; the request is sent before Wait returns, so
// that a start that follows cannot be missed.
func (c *Client) ContainerWait(ctx context.Context, id, condition string) (func() (int, error), error) {
	resp, err := c.Do(ctx, http.MethodPost, "/containers/"+id+"/wait", url.Values{"condition": {condition}}, nil)
	if err != nil {
		return nil, err
	}
	return func() (int, error) {
		defer resp.Body.Close()
		var w containertypes.WaitResponse
		if err := json.NewDecoder(resp.Body).Decode(&w); err != nil {
			return -1, fmt.Errorf("wait: %w", err)
		}
		if w.Error != nil && w.Error.Message != "" {
			return int(w.StatusCode), errors.New(w.Error.Message)
		}
		return int(w.StatusCode), nil
	}, nil
}

// ContainerList is GET /containers/json.
func (c *Client) ContainerList(ctx context.Context, q url.Values) ([]containertypes.Summary, error) {
	var out []containertypes.Summary
	return out, c.getJSON(ctx, "/containers/json", q, &out)
}

// ContainerInspectRaw is GET /containers/{id}/json as sent.
func (c *Client) ContainerInspectRaw(ctx context.Context, id string) (json.RawMessage, error) {
	var out json.RawMessage
	return out, c.getJSON(ctx, "/containers/"+id+"/json", nil, &out)
}

// ContainerLogs opens GET /containers/{id}/logs: a multiplexed stream.
func (c *Client) ContainerLogs(ctx context.Context, id string, q url.Values) (io.ReadCloser, error) {
	resp, err := c.Do(ctx, http.MethodGet, "/containers/"+id+"/logs", q, nil)
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

// ContainerAttach hijacks POST /containers/{id}/attach and returns the
// raw connection carrying the multiplexed output.
func (c *Client) ContainerAttach(ctx context.Context, id string, q url.Values) (*HijackedConn, error) {
	return c.Hijack(ctx, "/containers/"+id+"/attach?"+q.Encode(), nil)
}

// Hijack sends POST path (with a JSON body, or none) asking for the
// connection, and returns it: the daemon's stream to read, and writes (with
// CloseWrite, through HijackedConn) going to the process's stdin.
func (c *Client) Hijack(ctx context.Context, path string, body []byte) (*HijackedConn, error) {
	v, err := c.APIVersion(ctx)
	if err != nil {
		return nil, err
	}
	conn, err := c.dial(ctx)
	if err != nil {
		return nil, &ConnectError{Host: c.host, Err: err}
	}
	req, _ := http.NewRequest(http.MethodPost, "/v"+v+path, bytes.NewReader(body))
	req.Host = "api.balena-engine"
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "tcp")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if err := req.Write(conn); err != nil {
		conn.Close()
		return nil, err
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		conn.Close()
		return nil, err
	}
	if resp.StatusCode != http.StatusSwitchingProtocols && resp.StatusCode != http.StatusOK {
		defer conn.Close()
		return nil, responseError(resp)
	}
	return &HijackedConn{Reader: br, conn: conn}, nil
}

// HijackedConn is a hijacked connection: read the daemon's stream, write
// input, CloseWrite to end the input.
type HijackedConn struct {
	io.Reader
	conn net.Conn
}

func (h *HijackedConn) Write(p []byte) (int, error) { return h.conn.Write(p) }

// CloseWrite ends the input.
func (h *HijackedConn) CloseWrite() error {
	if cw, ok := h.conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

func (h *HijackedConn) Close() error { return h.conn.Close() }

// ExecCreate is POST /containers/{id}/exec.
func (c *Client) ExecCreate(ctx context.Context, id string, req containertypes.ExecCreateRequest) (string, error) {
	b, _ := json.Marshal(req)
	resp, err := c.Do(ctx, http.MethodPost, "/containers/"+id+"/exec", nil, bytes.NewReader(b))
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var out containertypes.ExecCreateResponse
	return out.ID, json.NewDecoder(resp.Body).Decode(&out)
}

// ExecInspect is GET /exec/{id}/json.
func (c *Client) ExecInspect(ctx context.Context, id string) (containertypes.ExecInspectResponse, error) {
	var out containertypes.ExecInspectResponse
	return out, c.getJSON(ctx, "/exec/"+id+"/json", nil, &out)
}

// ContainerInspect is GET /containers/{id}/json, decoded.
func (c *Client) ContainerInspect(ctx context.Context, id string) (containertypes.InspectResponse, error) {
	var out containertypes.InspectResponse
	return out, c.getJSON(ctx, "/containers/"+id+"/json", nil, &out)
}

// ContainerTop is GET /containers/{id}/top.
func (c *Client) ContainerTop(ctx context.Context, id string, psArgs string) (containertypes.TopResponse, error) {
	var q url.Values
	if psArgs != "" {
		q = url.Values{"ps_args": {psArgs}}
	}
	var out containertypes.TopResponse
	return out, c.getJSON(ctx, "/containers/"+id+"/top", q, &out)
}

// ContainerStats opens GET /containers/{id}/stats: one JSON sample, or one
// a second while stream is set.
func (c *Client) ContainerStats(ctx context.Context, id string, stream bool) (io.ReadCloser, error) {
	q := url.Values{"stream": {"0"}}
	if stream {
		q.Set("stream", "1")
	}
	resp, err := c.Do(ctx, http.MethodGet, "/containers/"+id+"/stats", q, nil)
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

// pathStatHeader carries the stat of a path the archive endpoints answer.
const pathStatHeader = "X-Docker-Container-Path-Stat"

// ContainerStatPath is HEAD /containers/{id}/archive: what the path is.
func (c *Client) ContainerStatPath(ctx context.Context, id, path string) (containertypes.PathStat, error) {
	resp, err := c.Do(ctx, http.MethodHead, "/containers/"+id+"/archive", url.Values{"path": {path}}, nil)
	if err != nil {
		return containertypes.PathStat{}, err
	}
	resp.Body.Close()
	return decodePathStat(resp.Header.Get(pathStatHeader))
}

// CopyFromContainer opens GET /containers/{id}/archive: a tar of the path,
// rooted at its name, and the path's stat.
func (c *Client) CopyFromContainer(ctx context.Context, id, path string) (io.ReadCloser, containertypes.PathStat, error) {
	resp, err := c.Do(ctx, http.MethodGet, "/containers/"+id+"/archive", url.Values{"path": {path}}, nil)
	if err != nil {
		return nil, containertypes.PathStat{}, err
	}
	st, err := decodePathStat(resp.Header.Get(pathStatHeader))
	if err != nil {
		resp.Body.Close()
		return nil, st, err
	}
	return resp.Body, st, nil
}

// CopyToContainer is PUT /containers/{id}/archive: the tar is extracted in
// the directory dir of the container. q carries Docker's options
// (noOverwriteDirNonDir, copyUIDGID).
func (c *Client) CopyToContainer(ctx context.Context, id, dir string, tar io.Reader, q url.Values) error {
	if q == nil {
		q = url.Values{}
	}
	q.Set("path", dir)
	resp, err := c.DoHeader(ctx, http.MethodPut, "/containers/"+id+"/archive", q, tar, http.Header{"Content-Type": {"application/x-tar"}})
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}

// decodePathStat reads the stat header: base64 of the JSON PathStat.
func decodePathStat(h string) (containertypes.PathStat, error) {
	var st containertypes.PathStat
	if h == "" {
		return st, errors.New("the daemon sent no " + pathStatHeader + " header")
	}
	b, err := base64.StdEncoding.DecodeString(h)
	if err != nil {
		return st, fmt.Errorf("bad %s header: %w", pathStatHeader, err)
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return st, fmt.Errorf("bad %s header: %w", pathStatHeader, err)
	}
	return st, nil
}
