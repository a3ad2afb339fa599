# A small Rack app for cordon proxy's tests: sign in, who am I, renew, log
# out, with sessions in process memory. With BUGGY=1 it has the 2021 bug:
# the session cookie a request presented stays behind in a process-wide slot
# (as it did in Unicorn's reused env), and now and then a later request of
# another user writes it into its own response's cookie jar.
require 'securerandom'

SESSIONS = {}          # token => user
LAST = { tok: nil, user: nil }
STATS = { bug: 0 }
BUGGY = ENV['BUGGY'] == '1'
RATE = (ENV['BUG_RATE'] || '0.05').to_f
COOKIE = 'app_session'

def cookie_of(env)
  (env['HTTP_COOKIE'] || '').split(';').each do |part|
    k, v = part.strip.split('=', 2)
    return v if k == COOKIE
  end
  nil
end

def set_cookie(headers, tok)
  headers['Set-Cookie'] = [headers['Set-Cookie'], "#{COOKIE}=#{tok}; Path=/; HttpOnly"].compact.join("\n")
end

app = lambda do |env|
  req = Rack::Request.new(env)
  tok = cookie_of(env)
  user = tok && SESSIONS[tok]
  headers = { 'Content-Type' => 'text/plain' }
  if BUGGY && req.path == '/me' && user && LAST[:tok] && LAST[:user] != user && rand < RATE
    STATS[:bug] += 1
    set_cookie(headers, LAST[:tok])
  end
  LAST[:tok], LAST[:user] = tok, user if user
  case req.path
  when '/login'
    old = tok
    SESSIONS.delete(old) if old
    user = req.params['u']
    tok = SecureRandom.urlsafe_base64(32)
    SESSIONS[tok] = user
    set_cookie(headers, tok)
  when '/renew'
    if user
      SESSIONS.delete(tok)
      tok = SecureRandom.urlsafe_base64(32)
      SESSIONS[tok] = user
      set_cookie(headers, tok)
    end
  when '/logout'
    SESSIONS.delete(tok) if tok
    headers['Set-Cookie'] = "#{COOKIE}=; Path=/; Max-Age=0"
    user = nil
  when '/bugs'
    return [200, headers, [STATS[:bug].to_s]]
  end
  headers['X-App-User'] = user.to_s if user
  [200, headers, [user.to_s]]
end

run app
