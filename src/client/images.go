package client

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"

	imagetypes "github.com/moby/moby/api/types/image"
)

// ImagePull starts a pull and returns the progress stream (JSON lines).
// auth is the X-Registry-Auth value ("" for none).
func (c *Client) ImagePull(ctx context.Context, ref, platform, auth string) (io.ReadCloser, error) {
	q := url.Values{"fromImage": {ref}}
	if platform != "" {
		q.Set("platform", platform)
	}
	var hdr http.Header
	if auth != "" {
		hdr = http.Header{"X-Registry-Auth": {auth}}
	}
	resp, err := c.DoHeader(ctx, http.MethodPost, "/images/create", q, nil, hdr)
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

// ImageDelta starts balenaEngine's POST /images/delta and returns the
// progress stream; tag and format may be "".
func (c *Client) ImageDelta(ctx context.Context, src, dest, tag, format string) (io.ReadCloser, error) {
	q := url.Values{"src": {src}, "dest": {dest}}
	if tag != "" {
		q.Set("t", tag)
	}
	if format != "" {
		q.Set("format", format)
	}
	resp, err := c.DoHeader(ctx, http.MethodPost, "/images/delta", q, nil, nil)
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

// ImageList is GET /images/json.
func (c *Client) ImageList(ctx context.Context, q url.Values) ([]imagetypes.Summary, error) {
	var out []imagetypes.Summary
	return out, c.getJSON(ctx, "/images/json", q, &out)
}

// ImageInspectRaw returns GET /images/{name}/json as the daemon sent it.
func (c *Client) ImageInspectRaw(ctx context.Context, name string) (json.RawMessage, error) {
	var out json.RawMessage
	return out, c.getJSON(ctx, "/images/"+name+"/json", nil, &out)
}

// ImageHistory is GET /images/{name}/history.
func (c *Client) ImageHistory(ctx context.Context, name string) ([]imagetypes.HistoryResponseItem, error) {
	var out []imagetypes.HistoryResponseItem
	return out, c.getJSON(ctx, "/images/"+name+"/history", nil, &out)
}

// ImageTag is POST /images/{name}/tag.
func (c *Client) ImageTag(ctx context.Context, name, repo, tag string) error {
	resp, err := c.Do(ctx, http.MethodPost, "/images/"+name+"/tag", url.Values{"repo": {repo}, "tag": {tag}}, nil)
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}

// ImageRemove is DELETE /images/{name}.
func (c *Client) ImageRemove(ctx context.Context, name string, force, noPrune bool) ([]imagetypes.DeleteResponse, error) {
	resp, err := c.Do(ctx, http.MethodDelete, "/images/"+name, url.Values{"force": {fmt.Sprint(force)}, "noprune": {fmt.Sprint(noPrune)}}, nil)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var out []imagetypes.DeleteResponse
	return out, json.NewDecoder(resp.Body).Decode(&out)
}

// ImagesPrune is POST /images/prune.
func (c *Client) ImagesPrune(ctx context.Context, filters string) (imagetypes.PruneReport, error) {
	var q url.Values
	if filters != "" {
		q = url.Values{"filters": {filters}}
	}
	var out imagetypes.PruneReport
	resp, err := c.Do(ctx, http.MethodPost, "/images/prune", q, nil)
	if err != nil {
		return out, err
	}
	defer resp.Body.Close()
	return out, json.NewDecoder(resp.Body).Decode(&out)
}

// ImageSave returns the archive of the named images.
func (c *Client) ImageSave(ctx context.Context, names []string) (io.ReadCloser, error) {
	resp, err := c.Do(ctx, http.MethodGet, "/images/get", url.Values{"names": names}, nil)
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

// ImageLoad sends an archive and returns the progress stream.
func (c *Client) ImageLoad(ctx context.Context, archive io.Reader, quiet bool) (io.ReadCloser, error) {
	resp, err := c.DoHeader(ctx, http.MethodPost, "/images/load", url.Values{"quiet": {fmt.Sprint(quiet)}}, archive,
		http.Header{"Content-Type": {"application/x-tar"}})
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

// Events opens GET /events; the caller reads JSON messages from the body.
func (c *Client) Events(ctx context.Context, q url.Values) (io.ReadCloser, error) {
	resp, err := c.Do(ctx, http.MethodGet, "/events", q, nil)
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

// ImageImport is POST /images/create?fromSrc=: body is the tarball when
// src is "-".
func (c *Client) ImageImport(ctx context.Context, src string, body io.Reader, q url.Values) (io.ReadCloser, error) {
	q.Set("fromSrc", src)
	hdr := http.Header{"Content-Type": {"application/x-tar"}}
	resp, err := c.DoHeader(ctx, http.MethodPost, "/images/create", q, body, hdr)
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

// ImagePush is POST /images/{name}/push; it returns the progress stream.
func (c *Client) ImagePush(ctx context.Context, name, tag, auth string) (io.ReadCloser, error) {
	if auth == "" {
		auth = "e30=" // {}: some daemons insist on the header
	}
	resp, err := c.DoHeader(ctx, http.MethodPost, "/images/"+name+"/push", url.Values{"tag": {tag}}, nil,
		http.Header{"X-Registry-Auth": {auth}})
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}
