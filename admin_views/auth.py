"""Login and logout for bureau staff."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required, login_user, logout_user

from extensions import db, login_manager
from forms.auth import LoginForm
from models import User
from services.audit import acting_as
from services.auth import authenticate

bp = Blueprint("auth", __name__)


@login_manager.user_loader
def load_user(user_id: str) -> User | None:
    try:
        return db.session.get(User, int(user_id))
    except (TypeError, ValueError):
        return None


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
        user = authenticate(db.session, form.email.data, form.password.data)
        if user is None:
            db.session.rollback()
            flash(_("Wrong e-mail or password, or the user is not active."), "error")
        else:
            with acting_as(user):
                db.session.commit()
            login_user(user)
            return redirect(safe_next(request.args.get("next")))
    return render_template("auth/login.html", form=form)


@bp.post("/logout")
@login_required
def logout():
    logout_user()
    flash(_("You are logged out."), "info")
    return redirect(url_for("auth.login"))
