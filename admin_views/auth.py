"""Login and logout for bureau staff."""

from __future__ import annotations

import time
from hmac import compare_digest
from urllib.parse import urlsplit

from flask import Blueprint, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required, login_user, logout_user

from extensions import db, login_manager
from forms.auth import LoginForm
from models import User
from services.audit import acting_as
from services.auth import burn_password_check, complete_login, login_candidate, password_matches
from services.sessions import end_sessions
from services.throttle import clear_account, hold_account, record_failure, seconds_to_wait

bp = Blueprint("auth", __name__)


@login_manager.user_loader
def load_user(session_id: str) -> User | None:
    """The user of a login cookie ("id:token"), only while the token is still the user's current one."""
    user_id, _sep, token = (session_id or "").partition(":")
    try:
        user = db.session.get(User, int(user_id))
    except (TypeError, ValueError):
        return None
    if user is None or not token or not compare_digest(token, user.session_token or ""):
        return None
    return user


def safe_next(target: str | None) -> str:
    """Only same-site paths are followed after login, never another host."""
    if target:
        parts = urlsplit(target)
        same_host = not parts.netloc or parts.netloc == request.host
        if same_host and parts.scheme in ("", request.scheme) and parts.path.startswith("/"):
            if not parts.path.startswith("//"):
                return parts.path + (f"?{parts.query}" if parts.query else "")
    return url_for("admin.index")


@bp.route("/login", methods=["GET", "POST"])
def login():
    if current_user.is_authenticated and current_user.is_staff:
        return redirect(safe_next(request.args.get("next")))
    form = LoginForm()
    if form.validate_on_submit():
        email, address, password = form.email.data, request.remote_addr, form.password.data
        # One short transaction before the slow password check, none during it (see LoginCandidate). The attempt
        # counts against the account up front, so simultaneous guesses at one account cannot get past its limit;
        # against the address only once it failed, so an office's simultaneous logins are not throttled.
        hold_account(db.session, email)
        wait = seconds_to_wait(db.session, email, address)
        if not wait:
            candidate = login_candidate(db.session, email)
            record_failure(db.session, email, None)
        db.session.commit()
        if wait:
            burn_password_check(password)
            flash(_("Too many failed logins. Try again in %(minutes)s min.", minutes=-(-wait // 60)), "error")
            return render_template("auth/login.html", form=form), 429
        user = complete_login(db.session, candidate) if password_matches(candidate, password) else None
        if user is None:
            db.session.rollback()
            record_failure(db.session, None, address)
            db.session.commit()
            flash(_("Wrong e-mail or password, or the user is not active."), "error")
        else:
            clear_account(db.session, email)
            with acting_as(user):
                db.session.commit()
            login_user(user)
            session["last_seen"] = int(time.time())
            return redirect(safe_next(request.args.get("next")))
    return render_template("auth/login.html", form=form)


@bp.post("/logout")
@login_required
def logout():
    """Log out here and everywhere: the user's session token is replaced, so copied cookies stop working."""
    end_sessions(current_user._get_current_object())
    db.session.commit()
    logout_user()
    flash(_("You are logged out."), "info")
    return redirect(url_for("auth.login"))
